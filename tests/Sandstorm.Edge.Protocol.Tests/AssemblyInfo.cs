// Sandboxes and the control plane share two cores: run test classes one after another.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
