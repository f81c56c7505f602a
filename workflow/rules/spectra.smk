# One job per (run, checkpoint): `init`, `final`, or `epochN` (read from the run's epochs.pt, which
# training writes for the epochs the experiment's `spectra: checkpoints:` names).
rule spectrum:
    input:
        weights=lambda w: PIPELINE.checkpoint_file(w.experiment, w.run, w.checkpoint),
        data=lambda w: PIPELINE.data_files(PIPELINE.run_dataset(w.experiment, w.run)),
    output:
        body="results/spectra/{experiment}/{run}/{checkpoint}.body.csv",
        layers="results/spectra/{experiment}/{run}/{checkpoint}.layers.csv",
        timing="results/spectra/{experiment}/{run}/{checkpoint}.timing.json",
    log:
        "results/logs/spectrum/{experiment}/{run}/{checkpoint}.log",
    benchmark:
        "results/benchmarks/spectrum/{experiment}/{run}/{checkpoint}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        args=lambda w: PIPELINE.spectra_args(w.experiment),
        epoch=lambda w: PIPELINE.checkpoint_epoch(w.checkpoint),
        data_dir=lambda w: PIPELINE.data_dir(PIPELINE.run_dataset(w.experiment, w.run)),
    shell:
        "python -m orthojac spectra --weights {input.weights:q} --data-dir {params.data_dir:q}"
        " {params.args} {params.epoch} --threads {threads} --out-body {output.body:q}"
        " --out-layers {output.layers:q} --out-timing {output.timing:q}"
        " 2> {log:q}"
