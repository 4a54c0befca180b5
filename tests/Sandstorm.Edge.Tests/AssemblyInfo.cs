// Sandboxes share two cores and bombs are sized for one at a time: run test classes one after another.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
