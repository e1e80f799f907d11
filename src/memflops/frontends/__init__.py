"""Frontends turn what the user has (a module, a target string, a layer list)
into something the analysis takes. Modules here import torch lazily where
they can: the layer-list spec frontend must work without torch."""
