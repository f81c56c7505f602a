# The training checkpoint (checkpoint.pt) is deliberately not an output: Snakemake deletes the
# outputs of a failed job, and a killed run must find its checkpoint to resume from.
rule train:
    input:
        data=lambda w: PIPELINE.data_files(PIPELINE.run_dataset(w.experiment, w.run)),
        selection=lambda w: PIPELINE.selection_file(w.experiment) or [],
    output:
        init="results/runs/{experiment}/{run}/init.pt",
        final="results/runs/{experiment}/{run}/final.pt",
        epochs="results/runs/{experiment}/{run}/epochs.pt",
        metrics="results/runs/{experiment}/{run}/metrics.csv",
        config="results/runs/{experiment}/{run}/config.json",
    log:
        "results/logs/train/{experiment}/{run}.log",
    benchmark:
        "results/benchmarks/train/{experiment}/{run}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        args=lambda w: PIPELINE.train_args(w.experiment, w.run),
        save_epochs=lambda w: PIPELINE.save_epochs(w.experiment),
        data_dir=lambda w: PIPELINE.data_dir(PIPELINE.run_dataset(w.experiment, w.run)),
        out_dir=lambda w: PIPELINE.run_dir(w.experiment, w.run),
    shell:
        "python -m orthojac train {params.args} --data-dir {params.data_dir:q}"
        " --out-dir {params.out_dir:q} --threads {threads}"
        " --save-epochs {params.save_epochs}"
        " 2> {log:q}"


# A screen's best setting, by orthojac.run.select's rule (fixed before the screen ran), for the
# experiments whose `select:` names it.
rule select:
    input:
        lambda w: PIPELINE.screen_runs(w.experiment),
    output:
        "results/selections/{experiment}.json",
    log:
        "results/logs/select/{experiment}.log",
    conda:
        "../../envs/report.yaml"
    params:
        keep=lambda w: PIPELINE.selection_keep(w.experiment),
    shell:
        "python -m orthojac select --runs {input:q} --keep {params.keep}"
        " --screen {wildcards.experiment:q} --out {output:q} 2> {log:q}"
