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
        "python -m orthojac.thesis.rnn train --data {params.data} --seed {wildcards.seed}"
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
        "python -m orthojac.thesis.rnn collect {input} --out {output} 2> {log}"


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
    params:
        out_dir=lambda wildcards, output: Path(output.spectrum).parent,
    shell:
        "python -m orthojac.thesis.figures hlav_rnn --table {input} --out-dir {params.out_dir}"
        " 2> {log}"


# H2, the sentiment LSTM (§5, Figs. 9–10): its two downloads (or a generated stand-in), per-seed
# runs, table and figures. With `hlav_lstm.data: optional` a download that finds no verified copy
# leaves an "unavailable" receipt and the table says "data unavailable".
rule fetch_download:
    output:
        "results/data/{download}/status.json",
    log:
        "results/logs/fetch_download/{download}.log",
    wildcard_constraints:
        download="[A-Za-z0-9_]+",
    conda:
        "../../envs/data.yaml"
    params:
        args=download_args,
    shell:
        "python -m orthojac.downloads {params.args}"
        " --out-dir results/data/{wildcards.download} 2> {log}"


rule hlav_lstm_stand_in:
    output:
        text=f"{STAND_IN}/text/status.json",
        embeddings=f"{STAND_IN}/embeddings/status.json",
    log:
        "results/logs/hlav_lstm_stand_in.log",
    conda:
        "../../envs/train.yaml"
    params:
        out_dir=lambda wildcards, output: Path(output.text).parent.parent,
        sentences=hlav_lstm_stand_in_sentences(),
    shell:
        "python -m orthojac.thesis.sentiment stand-in --out-dir {params.out_dir}"
        " --sentences {params.sentences} 2> {log}"


rule hlav_lstm:
    input:
        unpack(hlav_lstm_receipts),
    output:
        "results/hlav/lstm/seed={seed}.csv",
    log:
        "results/logs/hlav_lstm/seed={seed}.log",
    benchmark:
        "results/benchmarks/hlav_lstm/seed={seed}.tsv"
    wildcard_constraints:
        seed="[0-9]+",
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        args=hlav_lstm_args,
    shell:
        "python -m orthojac.thesis.lstm train --text {input.text} --embeddings {input.embeddings}"
        " --seed {wildcards.seed} {params.args} --threads {threads} --out {output} 2> {log}"


rule hlav_lstm_table:
    input:
        hlav_lstm_seed_tables(),
    output:
        "results/tables/hlav_lstm.csv",
    log:
        "results/logs/hlav_lstm_table.log",
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m orthojac.thesis.lstm collect {input} --out {output} 2> {log}"


rule hlav_lstm_figure:
    input:
        "results/tables/hlav_lstm.csv",
    output:
        spectrum=report(
            "results/figures/hlav_lstm_spectrum.png",
            category="Figures",
            labels={"figure": "hlav_lstm_spectrum"},
        ),
        accuracy=report(
            "results/figures/hlav_lstm_accuracy.png",
            category="Figures",
            labels={"figure": "hlav_lstm_accuracy"},
        ),
    log:
        "results/logs/hlav_lstm_figure.log",
    conda:
        "../../envs/report.yaml"
    params:
        out_dir=lambda wildcards, output: Path(output.spectrum).parent,
    shell:
        "python -m orthojac.thesis.figures hlav_lstm --table {input} --out-dir {params.out_dir}"
        " 2> {log}"


# H3 (Hlav §3, Fig. 2): deep linear networks, time to a fixed accuracy against depth.
rule hlav_linear:
    input:
        lambda wildcards: section_data("hlav_linear"),
    output:
        "results/hlav/linear/seed={seed}.csv",
    log:
        "results/logs/hlav_linear/seed={seed}.log",
    benchmark:
        "results/benchmarks/hlav_linear/seed={seed}.tsv"
    wildcard_constraints:
        seed="[0-9]+",
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        args=lambda wildcards: section_args("hlav_linear", HLAV_LINEAR_KEYS),
        data=lambda wildcards, input: Path(input[0]).parent,
    shell:
        "python -m orthojac.thesis.linear train --data {params.data} --seed {wildcards.seed}"
        " {params.args} --threads {threads} --out {output} 2> {log}"


# H5 (Hlav §3, Fig. 3): dense tanh/ReLU networks of depth 200, width 400.
rule hlav_deep:
    input:
        lambda wildcards: section_data("hlav_deep"),
    output:
        "results/hlav/deep/seed={seed}.csv",
    log:
        "results/logs/hlav_deep/seed={seed}.log",
    benchmark:
        "results/benchmarks/hlav_deep/seed={seed}.tsv"
    wildcard_constraints:
        seed="[0-9]+",
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        gpu=1,
    params:
        args=lambda wildcards: section_args("hlav_deep", HLAV_DEEP_KEYS),
        data=lambda wildcards, input: Path(input[0]).parent,
    shell:
        "python -m orthojac.thesis.deep train --data {params.data} --seed {wildcards.seed}"
        " {params.args} --threads {threads} --out {output} 2> {log}"


rule hlav_depth_table:
    input:
        lambda wildcards: hlav_depth_seed_tables(wildcards.section),
    output:
        "results/tables/{section}.csv",
    log:
        "results/logs/hlav_depth_table/{section}.log",
    wildcard_constraints:
        section="hlav_linear|hlav_deep",
    conda:
        "../../envs/train.yaml"
    params:
        module=lambda wildcards: HLAV_DEPTH[wildcards.section],
    shell:
        "python -m orthojac.thesis.{params.module} collect {input} --out {output} 2> {log}"


rule hlav_depth_figure:
    input:
        "results/tables/{section}.csv",
    output:
        report(
            "results/figures/{section}.png",
            category="Figures",
            labels={"figure": "{section}"},
        ),
    log:
        "results/logs/hlav_depth_figure/{section}.log",
    wildcard_constraints:
        section="hlav_linear|hlav_deep",
    conda:
        "../../envs/report.yaml"
    params:
        out_dir=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "python -m orthojac.thesis.figures {wildcards.section} --table {input}"
        " --out-dir {params.out_dir} 2> {log}"
