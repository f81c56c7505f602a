# Hlav (2019) experiments with their own models and loops: H1, the sequential-MNIST RNN (§5).
rule hlav_rnn:
    input:
        hlav_data,
    output:
        "results/hlav/rnn/seed={seed}.csv",
    log:
        "results/logs/hlav_rnn/seed={seed}.log",
    benchmark:
        "results/benchmarks/hlav_rnn/seed={seed}.tsv"
    wildcard_constraints:
        seed="[0-9]+",
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        args=hlav_args,
        data=lambda wildcards, input: Path(input[0]).parent,
    shell:
        "python -m orthojac.hlav train --data {params.data} --seed {wildcards.seed}"
        " {params.args} --threads {threads} --out {output} 2> {log}"


rule hlav_table:
    input:
        hlav_seed_tables(),
    output:
        "results/tables/hlav_rnn.csv",
    log:
        "results/logs/hlav_table.log",
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m orthojac.hlav collect {input} --out {output} 2> {log}"


rule hlav_figure:
    input:
        "results/tables/hlav_rnn.csv",
    output:
        spectrum=report(
            "results/figures/hlav_spectrum.png",
            category="Figures",
            labels={"figure": "hlav_spectrum"},
        ),
        accuracy=report(
            "results/figures/hlav_accuracy.png",
            category="Figures",
            labels={"figure": "hlav_accuracy"},
        ),
    log:
        "results/logs/hlav_figure.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m orthojac.hlav_figure --table {input} --spectrum {output.spectrum}"
        " --accuracy {output.accuracy} 2> {log}"
