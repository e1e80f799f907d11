"""Values the capture knows although its tensors are fake.

`known` keeps small real tensors beside the fakes (factory constants, given
input values, filled masks) and runs ops on them for real; `masks` reruns
indexing by a known mask; `picks` makes indices picked from unknown scores
known under the balanced assumption; `finite` answers non-finite checks;
`python_reads` answers value reads Python makes behind the dispatch mode;
`assumptions` counts what was answered by assumption and words the warnings;
`tensor_table` attaches values to tensors by identity.
"""
