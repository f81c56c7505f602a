# The report notebook is executed by Snakemake (its injected cell carries `snakemake.input`,
# `snakemake.config`); the executed copy is its log, rendered to HTML without that cell.
rule report_notebook:
    input:
        tables=expand("results/tables/{table}.csv", table=TABLES),
        figures=expand("results/figures/{name}.png", name=FIGURES),
    output:
        ledger=report(
            "results/report/ledger.csv", category="Claims", labels={"table": "ledger"}
        ),
        provenance="results/report/provenance.csv",
    log:
        notebook="results/report/report.ipynb",
    conda:
        "../../envs/report.yaml"
    notebook:
        "../../notebooks/report.py.ipynb"


rule render_report:
    input:
        ledger="results/report/ledger.csv",
    output:
        report("results/report/index.html", category="Report"),
    log:
        "results/logs/render_report.log",
    conda:
        "../../envs/report.yaml"
    params:
        notebook="results/report/report.ipynb",
    shell:
        "jupyter nbconvert --to html --no-input"
        " --TagRemovePreprocessor.enabled=True"
        " --TagRemovePreprocessor.remove_cell_tags=snakemake-job-properties"
        " --output-dir results/report --output index.html {params.notebook} 2> {log}"
