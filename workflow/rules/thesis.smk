# The thesis sections (Hlav 2019) this config runs, entries of orthojac.workflow.SECTIONS, all built
# by this one loop: rule <section> runs the section's program (H1 RNN, H2 LSTM, H3 deep linear, H5 deep
# tanh/ReLU: one job per seed, collected by <section>_table; H4, networks at initialisation: one
# job), <section>_figure draws its figures from its table (orthojac.thesis.figures). Rule names are
# the sections' so that profiles (profiles/slurm) and the reference's per-rule times address each.
for _s in PIPELINE.sections:
    if _s.folder:

        rule:
            name:
                _s.name
            input:
                PIPELINE.section_data(_s.name),
            output:
                _s.seed_table("{seed}"),
            log:
                _s.log("{seed}"),
            benchmark:
                _s.benchmark("{seed}")
            wildcard_constraints:
                seed="[0-9]+",
            conda:
                "../../envs/train.yaml"
            threads: 1
            resources:
                gpu=int(_s.gpu),
            params:
                command=_s.program,
                inputs=PIPELINE.section_input_args(_s.name),
                args=PIPELINE.section_args(_s.name),
            shell:
                "python -m orthojac {params.command:q} train {params.inputs} --seed {wildcards.seed:q}"
                " {params.args} --threads {threads} --out {output:q} 2> {log:q}"

        rule:
            name:
                f"{_s.name}_table"
            input:
                PIPELINE.seed_tables(_s.name),
            output:
                _s.table,
            log:
                f"results/logs/{_s.name}_table.log",
            conda:
                "../../envs/train.yaml"
            params:
                command=_s.program,
            shell:
                "python -m orthojac {params.command:q} collect {input:q} --out {output:q} 2> {log:q}"

    else:

        rule:
            name:
                _s.name
            output:
                _s.table,
            log:
                _s.log(),
            benchmark:
                _s.benchmark()
            conda:
                "../../envs/train.yaml"
            threads: 1
            params:
                command=_s.program,
                args=PIPELINE.section_args(_s.name),
            shell:
                "python -m orthojac {params.command:q} {params.args} --threads {threads} --out {output:q} 2> {log:q}"

    rule:
        name:
            f"{_s.name}_figure"
        input:
            _s.table,
        output:
            [
                report(
                    f"results/figures/{figure}.png",
                    category="Figures",
                    labels={"figure": figure},
                )
                for figure in _s.figures
            ],
        log:
            f"results/logs/{_s.name}_figure.log",
        conda:
            "../../envs/report.yaml"
        params:
            section=_s.name,
            out_dir=lambda wildcards, output: Path(output[0]).parent,
        shell:
            "python -m orthojac thesis-figures {params.section:q} --table {input:q}"
            " --out-dir {params.out_dir:q} 2> {log:q}"


# H2's two downloads (or a generated stand-in). With `hlav_lstm.data: optional` a download that
# finds no verified copy leaves an "unavailable" receipt and the table says "data unavailable".
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
        args=lambda w: PIPELINE.download_args(w.download),
        out_dir=lambda w: PIPELINE.data_dir(w.download),
    shell:
        "python -m orthojac download {params.args}"
        " --out-dir {params.out_dir:q} 2> {log:q}"


rule hlav_lstm_stand_in:
    output:
        text=f"{STAND_IN_DIR}/text/status.json",
        embeddings=f"{STAND_IN_DIR}/embeddings/status.json",
    log:
        "results/logs/hlav_lstm_stand_in.log",
    conda:
        "../../envs/train.yaml"
    params:
        out_dir=lambda wildcards, output: Path(output.text).parent.parent,
        sentences=PIPELINE.stand_in_sentences(),
    shell:
        "python -m orthojac sentiment stand-in --out-dir {params.out_dir:q}"
        " --sentences {params.sentences:q} 2> {log:q}"
