"""Hyper-parameter search inside a sweep (Ray Tune). Import-free on purpose: the sweep engine reads
`vtp.tune.spec` at plan time, and Ray is imported only inside the tune job (`vtp.stages.tune`).

    vtp.tune.spec       TuneSpec, SchedulerSpec: the `tune:` section of a stage (torch/ray-free)
    vtp.tune.search     spec -> Ray search space, scheduler, Tuner; best.json (in the job)
    vtp.tune.trainables the trainables: `tokenizer` (real vtp.train at checkpoints)
    vtp.tune.trials     every trial as an MLflow child run of the tune stage's run
    vtp.tune.cluster    Ray inside a SLURM allocation: head port, workers via srun
"""
