# The thesis sections (Hlav 2019; orthojac.workflow.SECTIONS): each runs its own program. H1 (RNN),
# H2 (LSTM), H3 (deep linear), H5 (deep tanh/ReLU): one job per seed, collected into one table;
# H4 (networks at initialisation, no training): one job. Then each section's figures.
rule thesis_seed:
    input:
        lambda w: PIPELINE.section_data(f"hlav_{w.folder}"),
    output:
        "results/hlav/{folder}/seed={seed}.csv",
    log:
        "results/logs/hlav_{folder}/seed={seed}.log",
    benchmark:
        "results/benchmarks/hlav_{folder}/seed={seed}.tsv"
    wildcard_constraints:
        folder="|".join(s.folder for s in SECTIONS.values() if s.folder),
        seed="[0-9]+",
    conda:
        "../../envs/train.yaml"
    threads: 1
    resources:
        gpu=lambda w: int(SECTIONS[f"hlav_{w.folder}"].gpu),
    params:
        module=lambda w: SECTIONS[f"hlav_{w.folder}"].module,
        inputs=lambda w: PIPELINE.section_input_args(f"hlav_{w.folder}"),
        args=lambda w: PIPELINE.section_args(f"hlav_{w.folder}"),
    shell:
        "python -m {params.module} train {params.inputs} --seed {wildcards.seed}"
        " {params.args} --threads {threads} --out {output} 2> {log}"


rule thesis_table:
    input:
        lambda w: PIPELINE.seed_tables(w.section),
    output:
        "results/tables/{section}.csv",
    log:
        "results/logs/thesis_table/{section}.log",
    wildcard_constraints:
        section="|".join(s.name for s in SECTIONS.values() if s.folder),
    conda:
        "../../envs/train.yaml"
    params:
        module=lambda w: SECTIONS[w.section].module,
    shell:
        "python -m {params.module} collect {input} --out {output} 2> {log}"


rule h4:
    output:
        "results/tables/h4.csv",
    log:
        "results/logs/h4.log",
    benchmark:
        "results/benchmarks/h4.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 1
    params:
        module=SECTIONS["h4"].module,
        args=lambda w: PIPELINE.section_args("h4"),
    shell:
        "python -m {params.module} {params.args} --threads {threads} --out {output} 2> {log}"


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
    shell:
        "python -m orthojac.downloads {params.args}"
        " --out-dir results/data/{wildcards.download} 2> {log}"


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
        "python -m orthojac.thesis.sentiment stand-in --out-dir {params.out_dir}"
        " --sentences {params.sentences} 2> {log}"


# Each section's figures, drawn from its table (orthojac.thesis.figures; one rule per section of
# the registry, since the sections draw different numbers of figures).
for _section in SECTIONS.values():

    rule:
        name:
            f"{_section.name}_figures"
        input:
            f"results/tables/{_section.name}.csv",
        output:
            [
                report(
                    f"results/figures/{figure}.png",
                    category="Figures",
                    labels={"figure": figure},
                )
                for figure in _section.figures
            ],
        log:
            f"results/logs/thesis_figures/{_section.name}.log",
        conda:
            "../../envs/report.yaml"
        params:
            section=_section.name,
            out_dir=lambda wildcards, output: Path(output[0]).parent,
        shell:
            "python -m orthojac.thesis.figures {params.section} --table {input}"
            " --out-dir {params.out_dir} 2> {log}"
