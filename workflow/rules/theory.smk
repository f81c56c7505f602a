# Experiments that train nothing: networks at initialisation against theory (H4, Hlav §3).
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
        args=h4_args,
    shell:
        "python -m orthojac.thesis.theory {params.args} --threads {threads} --out {output} 2> {log}"


rule h4_figure:
    input:
        "results/tables/h4.csv",
    output:
        report(
            "results/figures/h4_spectra.png",
            category="Figures",
            labels={"figure": "h4_spectra"},
        ),
    log:
        "results/logs/h4_figure.log",
    conda:
        "../../envs/report.yaml"
    params:
        out_dir=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "python -m orthojac.thesis.figures h4 --table {input} --out-dir {params.out_dir}"
        " 2> {log}"
