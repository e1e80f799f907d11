"""The model zoos: Hugging Face transformers (`hf`), torchvision and timm.

Model-family knowledge lives here: how to build each zoo's models without
weights, the inputs they take, the repairs and shape-only rewrites some need.
Each zoo module offers `load(name) -> Loaded` and `names() -> list[str]`,
reached by the engine only through `memflops.frontends.zoos`: no engine
package imports a zoo (a test checks it).
"""
