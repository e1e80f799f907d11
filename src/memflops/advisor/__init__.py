"""The advisor: every way to save memory or FLOPs, applied to a copy of the model or to
the step, analysed again by `memflops.analyze`, compared with the baseline
(`advise.advise`); with a budget, the cheapest combination that fits (`search.py`).

One module per family of changes (`batch`, `inplace`, `batchnorm`, `head`, `freeze`,
`checkpoint`, `precision`, `optimizer`, `convs`), each registering its changes in
`changes.CHANGES`; `advice.py` holds the frozen result and its JSON form
(`memflops.advice/1`); `table.py` renders it.
"""
