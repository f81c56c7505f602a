rule tables:
    input:
        metrics=metrics_files(),
        body=spectra_files("body"),
        layers=spectra_files("layers"),
    output:
        expand("results/tables/{table}.csv", table=TABLES),
    log:
        "results/logs/tables.log",
    conda:
        "../../envs/report.yaml"
    params:
        claims=claims_json(),
    shell:
        "python -m orthojac.tables --out-dir results/tables --claims {params.claims}"
        " --metrics {input.metrics} --body {input.body} --layers {input.layers} 2> {log}"


rule figures:
    input:
        expand("results/tables/{table}.csv", table=TABLES),
    output:
        [
            report(
                f"results/figures/{name}.png",
                category="Figures",
                subcategory=FIGURE_SUBCATEGORY[name],
                labels={"figure": name.replace("_", " ")},
            )
            for name in FIGURES
        ],
    log:
        "results/logs/figures.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "python -m orthojac.figures --tables results/tables --out-dir results/figures 2> {log}"
