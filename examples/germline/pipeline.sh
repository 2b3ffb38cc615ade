#!/bin/sh
# A small germline pipeline (FASTQ -> BAM -> VCF), every step recorded by
# `prov run` under one parent pipeline run:
#
#   bwa index, samtools faidx             the reference, once
#   bwa mem, samtools sort, samtools index,
#   bcftools mpileup, call, index         per sample
#   bcftools merge                        the cohort VCF
#
# Usage: pipeline.sh DATA OUT
#   DATA holds ref.fa and <sample>_R1.fastq.gz / <sample>_R2.fastq.gz
#   (simulate.py writes such a folder; sample names without spaces); the
#   indexes are written beside ref.fa, everything else into OUT, ending with
#   OUT/cohort.vcf.gz.
#
# Environment:
#   PROV=path/to/prov     the prov binary (default: prov on PATH)
#   PROV_STORE=...        where the runs are recorded (default: prov.db here)
#   PROV_RECORD=0         run the same commands without prov (to time it)
#   THREADS=2             threads for bwa mem and samtools sort
#   RUNTIME=none          none: the tools on PATH run; docker/podman/apptainer:
#                         each step runs in its image, pinned by digest
#
# Each step records the BioContainers image it runs in, pinned by digest
# (images.tsv says where each digest comes from). With RUNTIME=none the tools
# on PATH run instead (in CI, Debian's builds) and --software records the
# versions that really ran.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 DATA OUT" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
data=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
PROV=${PROV:-prov}
THREADS=${THREADS:-2}
RUNTIME=${RUNTIME:-none}
RECORD=${PROV_RECORD:-1}

[ -f "$data/ref.fa" ] || { echo "$0: no ref.fa in $data" >&2; exit 2; }
samples=$(cd "$data" && ls -- *_R1.fastq.gz 2>/dev/null | sed 's/_R1\.fastq\.gz$//')
[ -n "$samples" ] || { echo "$0: no <sample>_R1.fastq.gz in $data" >&2; exit 2; }

# The whole pipeline is one run; the steps attach to it as children.
if [ "$RECORD" != 0 ] && [ -z "${PROV_GERMLINE_PARENT:-}" ]; then
    # (No inputs or outputs of its own: the steps say what was read and made.
    # The script is named by its full path, as `sh pipeline.sh` leaves $0 a
    # bare name that would be looked up on PATH.)
    PROV_GERMLINE_PARENT=1 exec "$PROV" run --job germline --param threads="$THREADS" \
        --param samples="$(echo $samples)" -- sh "$here/$(basename "$0")" "$data" "$out"
fi

image() { awk -v t="$1" '$1 == t { print $2 }' "$here/images.tsv"; }
BWA=$(image bwa)
SAMTOOLS=$(image samtools)
BCFTOOLS=$(image bcftools)
bwa_version=$(bwa 2>&1 | sed -n 's/^Version: //p')
samtools_version=$(samtools --version | sed -n '1s/^samtools //p')
bcftools_version=$(bcftools --version | sed -n '1s/^bcftools //p')

# step JOB IMAGE [prov run options...] -- COMMAND...
# Runs COMMAND in $out (in IMAGE unless RUNTIME=none), recorded by prov run
# unless PROV_RECORD=0.
step() {
    job=$1 img=$2
    shift 2
    tool=${img##*/}
    tool=${tool%%:*}
    case $tool in
        bwa) version=$bwa_version ;;
        samtools) version=$samtools_version ;;
        *) version=$bcftools_version ;;
    esac
    if [ "$RUNTIME" != none ]; then
        # Put "RUNTIME run ... IMAGE" (or apptainer exec) before the command.
        count=$# i=0 seen=
        while [ "$i" -lt "$count" ]; do
            a=$1
            shift
            set -- "$@" "$a"
            if [ -z "$seen" ] && [ "$a" = "--" ]; then
                seen=1
                case $RUNTIME in
                    apptainer) set -- "$@" apptainer exec --bind "$data,$out" --pwd "$out" "docker://$img" ;;
                    *) set -- "$@" "$RUNTIME" run --rm -v "$data:$data" -v "$out:$out" -w "$out" "$img" ;;
                esac
            fi
            i=$((i + 1))
        done
    fi
    if [ "$RECORD" = 0 ]; then
        while [ "$1" != "--" ]; do shift; done
        shift
        (cd "$out" && "$@")
    else
        (cd "$out" && "$PROV" run --job "$job" --container "$img" --runtime "$RUNTIME" \
            --software "$tool=$version" "$@")
    fi
}

# Commands name files relative to $out: tools that write their command line
# into their output (bwa's @PG line, bcftools' ##reference) then give the
# same bytes wherever the tree is, so that `prov rerun --check` can re-make
# them byte for byte in a scratch directory.
rel=$(realpath --relative-to="$out" "$data")
ref=$rel/ref.fa

step bwa_index "$BWA" --param algorithm=is --input "$ref" \
    --output "$ref.amb" --output "$ref.ann" --output "$ref.bwt" --output "$ref.pac" --output "$ref.sa" \
    -- bwa index -a is "$ref"
step samtools_faidx "$SAMTOOLS" --input "$ref" --output "$ref.fai" -- samtools faidx "$ref"

for s in $samples; do
    rg="@RG\\tID:$s\\tSM:$s\\tPL:ILLUMINA"
    step bwa_mem "$BWA" --param threads="$THREADS" --param read_group="$rg" \
        --input "$ref" --input "$ref.amb" --input "$ref.ann" --input "$ref.bwt" --input "$ref.pac" --input "$ref.sa" \
        --input "$rel/${s}_R1.fastq.gz" --input "$rel/${s}_R2.fastq.gz" --output "$s.sam" \
        -- bwa mem -t "$THREADS" -R "$rg" -o "$s.sam" "$ref" "$rel/${s}_R1.fastq.gz" "$rel/${s}_R2.fastq.gz"
    step samtools_sort "$SAMTOOLS" --param threads="$THREADS" --input "$s.sam" --output "$s.bam" \
        -- samtools sort -@ "$THREADS" -o "$s.bam" "$s.sam"
    step samtools_index "$SAMTOOLS" --input "$s.bam" --output "$s.bam.bai" -- samtools index "$s.bam"
    step bcftools_mpileup "$BCFTOOLS" --param annotate=AD,DP --param max_depth=1000 \
        --input "$ref" --input "$ref.fai" --input "$s.bam" --input "$s.bam.bai" --output "$s.pileup.bcf" \
        -- bcftools mpileup --no-version -f "$ref" -a AD,DP -d 1000 -Ob -o "$s.pileup.bcf" "$s.bam"
    step bcftools_call "$BCFTOOLS" --param caller=multiallelic --param variants_only=true \
        --input "$s.pileup.bcf" --output "$s.vcf.gz" \
        -- bcftools call --no-version -m -v -Oz -o "$s.vcf.gz" "$s.pileup.bcf"
    step bcftools_index "$BCFTOOLS" --input "$s.vcf.gz" --output "$s.vcf.gz.csi" -- bcftools index -f "$s.vcf.gz"
done

vcfs=$(for s in $samples; do printf '%s.vcf.gz ' "$s"; done)
# shellcheck disable=SC2046,SC2086
step bcftools_merge "$BCFTOOLS" --param missing_to_ref=false \
    $(for v in $vcfs; do printf -- '--input %s --input %s.csi ' "$v" "$v"; done) --output cohort.vcf.gz \
    -- bcftools merge --no-version -Oz -o cohort.vcf.gz $vcfs
