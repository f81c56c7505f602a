# Each report page is a notebook executed by Snakemake (its injected cell carries `snakemake.input`,
# `snakemake.config`); the executed copy is its log, rendered to HTML without that cell. The index
# holds the claims ledger and links to one page per entry of orthojac.workflow.PAGES (the one list
# of pages: REPORT_PAGES is index + those); each of those pages is rule report_section's job.
rule report_index:
    input:
        tables=PIPELINE.report_tables(),
        configs=PIPELINE.run_files("config.json"),
    output:
        ledger=report(
            "results/report/ledger.csv", category="Claims", labels={"table": "ledger"}
        ),
        overview=report(
            "results/report/overview.png",
            category="Claims",
            labels={"figure": "overview"},
        ),
    log:
        notebook="results/report/index.ipynb",
    # A page's kernel can die before it replies to kernel_info (seen once in CI, two pages starting
    # together; the known cause is another process taking one of the ports Jupyter chose for the
    # kernel before it binds them, jupyter_client#154): the page is run up to twice more, as many
    # times as profiles/slurm's restart-times (a rule's own `retries` replaces that setting). A
    # notebook that fails on its own fails three times and stops the workflow (tests/test_faults.py).
    retries: 2
    conda:
        "../../envs/report.yaml"
    params:
        pages=REPORT_PAGES[1:],
        # the committed CPU reference's ledger, shown beside this run's (read if present)
        reference_ledger="results/reference/cpu/report/ledger.csv",
    notebook:
        "../../notebooks/index.py.ipynb"


rule report_section:
    input:
        tables=PIPELINE.report_tables(),
        figures=PIPELINE.report_figures(),
        # each claim's part opens with its ledger row (the index computes the ledger)
        ledger="results/report/ledger.csv",
    output:
        provenance=report(
            "results/report/{page}.provenance.csv",
            category="Provenance",
            labels={"page": "{page}"},
        ),
    log:
        notebook="results/report/{page}.ipynb",
    wildcard_constraints:
        page="|".join(REPORT_PAGES[1:]),
    retries: 2  # a kernel that dies at start: see rule report_index
    conda:
        "../../envs/report.yaml"
    notebook:
        "../../notebooks/{wildcards.page}.py.ipynb"


rule render_page:
    input:
        lambda w: PIPELINE.page_inputs(w.page),
    output:
        "results/report/{page}.html",
    log:
        "results/logs/render_page/{page}.log",
    wildcard_constraints:
        page="|".join(REPORT_PAGES),
    conda:
        "../../envs/report.yaml"
    params:
        notebook="results/report/{page}.ipynb",
    shell:
        "jupyter nbconvert --to html --no-input"
        " --TagRemovePreprocessor.enabled=True"
        " --TagRemovePreprocessor.remove_cell_tags=snakemake-job-properties"
        " --output-dir results/report --output {wildcards.page:q}.html {params.notebook:q} 2> {log:q}"


# The rendered pages together, for `snakemake --report report.zip`: a directory with an htmlindex
# keeps the pages side by side in the zip, so their links to each other resolve there too (pages
# registered one by one would each land in a folder of their own).
rule report_site:
    input:
        expand("results/report/{page}.html", page=REPORT_PAGES),
    output:
        report(
            directory("results/report_site"),
            htmlindex="index.html",
            category="Report",
            labels={"page": "all pages"},
        ),
    log:
        "results/logs/report_site.log",
    conda:
        "../../envs/report.yaml"
    shell:
        "mkdir -p {output:q} && cp {input:q} {output:q}/ 2> {log:q}"
