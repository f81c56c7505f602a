rule tables:
    input:
        metrics=PIPELINE.run_files("metrics.csv"),
        body=PIPELINE.spectra_files("body"),
        layers=PIPELINE.spectra_files("layers"),
        selections=PIPELINE.selection_files(),
    output:
        expand("results/tables/{table}.csv", table=PAPER_TABLES),
    log:
        "results/logs/tables.log",
    conda:
        "../../envs/report.yaml"
    params:
        claims=PIPELINE.claims_json(),
    shell:
        "python -m orthojac tables --out-dir results/tables --claims {params.claims}"
        " --metrics {input.metrics:q} --body {input.body:q} --layers {input.layers:q}"
        " --selections {input.selections:q} 2> {log:q}"


rule figures:
    input:
        expand("results/tables/{table}.csv", table=PAPER_TABLES),
    output:
        [
            report(
                f"results/figures/{name}.png",
                category="Figures",
                subcategory=figure.subcategory,
                labels={"figure": name.replace("_", " ")},
            )
            for name, figure in PAPER_FIGURES.items()
        ],
    log:
        "results/logs/figures.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m orthojac figures --tables results/tables --out-dir results/figures 2> {log:q}"
