#!/bin/bash
# The README's NCBI contrasts that no report table carries, from the stored reported seeds:
#     bash docs/measure_ncbi_contrasts.sh    (writes results/ncbi/contrasts.md; run from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
{
echo "# Contrasts the main table does not carry"
echo
echo "Made by \`bash docs/measure_ncbi_contrasts.sh\` ($(date -u +%F)): each block is the output of the command above it, on this folder's reported seeds."
for pair in "lora r8|layerskip top:2" "lora r8|layerskip bottom:2" "layerskip bottom:2|layerskip top:2" \
            "layerskip auto:2|layerskip top:2" "layerskip top:2|layerskip top:2 pooled" \
            "layerskip bottom:1|layerskip top:1" "layerskip bottom:3|layerskip top:3" "lora r32|lora r8" \
            "layerskip top:5|fedavg|dirichlet:0.5" "layerskip top:3|fedavg|dirichlet:0.5" \
            "lora r8|layerskip top:5|dirichlet:0.5"; do
  IFS='|' read -r a b partition <<< "$pair"  # a partition where a label is one run (FedAvg ran at two lrs under iid)
  flag=${partition:+ --partition $partition}
  echo
  echo "    python -m bench.report.contrast results/ncbi \"$a\" \"$b\"$flag"
  echo
  $PY -m bench.report.contrast results/ncbi "$a" "$b"$flag | sed 's/^/    /'
done
} > results/ncbi/contrasts.md.tmp
mv results/ncbi/contrasts.md.tmp results/ncbi/contrasts.md
