rule fetch_data:
    output:
        expand("results/data/{{dataset}}/{name}", name=IDX_FILES),
    log:
        "results/logs/fetch_data/{dataset}.log",
    conda:
        "../../envs/data.yaml"
    params:
        args=lambda w: PIPELINE.fetch_args(w.dataset),
    shell:
        "python -m orthojac.data --out-dir results/data/{wildcards.dataset} {params.args} 2> {log}"
