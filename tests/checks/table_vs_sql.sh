#!/usr/bin/env bash
# Checks `vae table` against a direct SQL aggregation (issue: sweep runner,
# done-when 4): for every (ROW, COL) cell of SWEEP, the mean and standard error
# (sample standard deviation / sqrt(n)) of METRIC over seeds computed by SQLite
# must equal the cells of the Markdown and the LaTeX table, at DIGITS decimals.
#
#   tests/checks/table_vs_sql.sh DB SWEEP ROW COL METRIC [DIGITS=4] [VAE=build/vae]
set -euo pipefail
db=$1 sweep=$2 row=$3 col=$4 metric=$5 digits=${6:-4} vae=${7:-build/vae}
sql="
WITH v AS (
  SELECT pr.value AS r, pc.value AS c, m.value AS x
  FROM sweep_runs sr JOIN sweeps s USING (sweep_id) JOIN runs ru USING (run_id)
  JOIN params pr ON pr.run_id = ru.run_id AND pr.key = '$row'
  JOIN params pc ON pc.run_id = ru.run_id AND pc.key = '$col'
  JOIN metrics m ON m.run_id = ru.run_id AND m.name = '$metric'
  WHERE s.name = '$sweep' AND ru.status = 'done'),
a AS (SELECT r, c, count(*) AS n, avg(x) AS mean FROM v GROUP BY r, c)
SELECT printf('%g', a.r), printf('%g', a.c), printf('%.${digits}f', a.mean),
       printf('%.${digits}f', sqrt(sum((v.x - a.mean) * (v.x - a.mean)) / (a.n - 1) / a.n))
FROM a JOIN v USING (r, c) GROUP BY a.r, a.c ORDER BY a.r + 0, a.c + 0;"
args=(table --db "$db" --sweep "$sweep" --rows "$row" --cols "$col" --metric "$metric" --digits "$digits")
md=$("$vae" "${args[@]}" --format markdown)
tex=$("$vae" "${args[@]}" --format latex)
cells=0 bad=0
while IFS='|' read -r r c mean se; do
  cells=$((cells + 1))
  # the markdown row "| r | ... |": the cell in the column of c
  header=$(grep -m1 "^| $row " <<<"$md")
  idx=$(tr '|' '\n' <<<"$header" | grep -n "^ *$col=$c *\$" | cut -d: -f1)
  mdcell=$(grep "^| $r |" <<<"$md" | cut -d'|' -f"$idx" | tr -d ' *')
  # the LaTeX row "r & ... \\": cell number idx-1 (the row label is field 1)
  texcell=$(grep "^$r & " <<<"$tex" | awk -F' & ' -v i=$((idx - 1)) '{print $i}' | sed 's/\\\\$//; s/\\mathbf{//; s/}//; s/\$//g; s/\\pm/±/; s/ //g')
  want="$mean±$se"
  if [[ $mdcell != "$want" || $texcell != "$want" ]]; then
    echo "MISMATCH $row=$r $col=$c: SQL $want, markdown $mdcell, latex $texcell"; bad=$((bad + 1))
  fi
done < <(sqlite3 -separator '|' "$db" "$sql")
echo "$cells cells compared at $digits decimals: $((cells - bad)) equal in Markdown and LaTeX, $bad different"
[[ $cells -gt 0 && $bad == 0 ]]
