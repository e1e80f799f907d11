"""Where a real kernel differs from PyTorch's meta kernel, one rule per op.

`sizes`: outputs a real kernel allocates at other sizes (fp32 statistics of
half-precision norms, separate bias gradients); `rnn_workspace`: oneDNN's
LSTM/GRU workspace; `meta_gaps`: inputs a meta kernel refuses that a real
kernel accepts (`_grouped_mm` in fp32), given their output so the op runs;
`flex` and `jagged_sdpa`: attention that PyTorch runs differently on a CPU
than on the GPU a fake tensor stands for, run as on the GPU.
"""
