"""Validate a FHIR Bulk Data export on Spark with onramp, and write the findings to Parquet.

Every executor runs the onramp binary (shipped to it with SparkContext.addFile) as a
streaming filter: the NDJSON lines of its partition go to `onramp validate --format ndjson -`
on standard input, and each finding comes back as one JSON line. Valid resources cost no
output. The findings are written to Parquet, and the counts per resource type, tier and rule
are printed.

    spark-submit examples/spark/validate_export.py --onramp target/release/onramp \\
        --out findings.parquet export/manifest.json

INPUT is a Bulk Data manifest (the $export status response; its `output` files, local paths
or file: URLs) or NDJSON files or globs Spark can read (local, HDFS, S3, ABFS, DBFS).
`--master local[2]` runs it on this machine; on a cluster, leave it out and let
spark-submit say where.
"""

import argparse
import json
import os
import subprocess
import sys
from urllib.parse import urlparse


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", nargs="+", help="a Bulk Data manifest, or NDJSON files or globs")
    parser.add_argument("--onramp", required=True, help="the onramp binary (Linux x86_64): a path, or a dbfs:/, s3:// or hdfs:// URL")
    parser.add_argument("--out", required=True, help="where the findings go, as Parquet")
    parser.add_argument("--tier", default="profile", choices=["schema", "structure", "profile"])
    parser.add_argument("--master", help="e.g. local[2]; by default spark-submit's")
    parser.add_argument("--partitions", type=int, default=0, help="at least this many input partitions")
    return parser.parse_args(argv)


def ndjson_paths(inputs):
    """The NDJSON files to read: a manifest's outputs, or the inputs as given."""
    paths = []
    for name in inputs:
        if name.endswith(".json") and os.path.isfile(name):
            with open(name, encoding="utf-8") as f:
                manifest = json.load(f)
            if "output" in manifest and "transactionTime" in manifest:
                folder = os.path.dirname(os.path.abspath(name))
                for output in manifest["output"]:
                    url = urlparse(output["url"])
                    if url.scheme == "file":
                        paths.append(url.path)
                    elif url.scheme in ("", None):
                        paths.append(os.path.join(folder, output["url"]))
                    else:
                        # Spark reads what its file systems can (s3a://, abfss://, hdfs://).
                        paths.append(output["url"])
                continue
        paths.append(name)
    return paths


def validate_partition(tier):
    """A function for mapPartitions: the partition's lines through onramp, findings out."""

    def run(lines):
        from pyspark import SparkFiles

        binary = SparkFiles.get("onramp")
        os.chmod(binary, 0o755)
        process = subprocess.Popen(
            [binary, "validate", "--quiet", "--tier", tier, "--format", "ndjson", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        def feed():
            # In chunks: one write per 4,096 lines, not one per line.
            import itertools

            try:
                while True:
                    chunk = list(itertools.islice(lines, 4096))
                    if not chunk:
                        break
                    process.stdin.write(("\n".join(chunk) + "\n").encode("utf-8"))
            finally:
                process.stdin.close()

        # Feed on a thread so that a partition with many findings cannot fill the pipe
        # back and stall both sides.
        import threading

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        for finding in process.stdout:
            yield finding.decode("utf-8")
        feeder.join()
        errors = process.stderr.read().decode("utf-8", "replace")
        code = process.wait()
        # 0: all valid, 1: findings; anything else is onramp failing to run.
        if code not in (0, 1):
            raise RuntimeError(f"onramp exited {code}: {errors.strip()}")

    return run


def main(argv):
    args = parse_args(argv)
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    builder = SparkSession.builder.appName("onramp-validate-export")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # A local file, or any path Spark's file systems read (dbfs:/, s3://, hdfs://).
    binary = args.onramp if "://" in args.onramp or args.onramp.startswith("dbfs:") else os.path.abspath(args.onramp)
    spark.sparkContext.addFile(binary)

    paths = ndjson_paths(args.input)
    lines = spark.sparkContext.textFile(",".join(paths), minPartitions=args.partitions or None)
    # onramp skips blank lines itself: no Python per line here.
    findings = lines.mapPartitions(validate_partition(args.tier))
    frame = spark.read.json(findings, schema=(
        "file STRING, line LONG, entry LONG, resource STRING, path STRING, pointer STRING, "
        "keyword STRING, message STRING, tier STRING, rule STRING, profile STRING"
    ))
    # `file` and `line` name the partition's standard input, not the export's file: the
    # resource's `Type/id` says which one it is.
    frame = frame.drop("file", "line").withColumn("type", F.split(F.col("resource"), "/").getItem(0))
    frame.write.mode("overwrite").parquet(args.out)

    written = spark.read.parquet(args.out)
    total = written.count()
    resources = written.select("resource").distinct().count()
    print(f"onramp: {total} findings in {resources} resources, in {args.out}")
    for row in written.groupBy("type", "tier", "rule").count().orderBy("type", "tier", "rule").collect():
        print(f"  {row['type'] or '-'}  {row['tier']}  {row['rule']}  {row['count']}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
