// Reads a published batchmatch partition with DuckDB and prints facts about
// every table as JSON; pipeline/duckdb_test.go compares them with the manifest.
// Usage: node read_outputs.mjs OUT_ROOT PARTITION_DIR
import { DuckDBInstance } from '@duckdb/node-api';

const [root, part] = process.argv.slice(2);
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
const q = async (sql) => (await c.runAndReadAll(sql)).getRowObjectsJson();
const t = (name) => `read_parquet('${part}/${name}/*.parquet')`;

const facts = {};
for (const name of ['matches', 'soulmates', 'rejects']) {
  facts[name] = {
    schema: (await q(`describe select * from ${t(name)}`)).map((r) => `${r.column_name}:${r.column_type}`),
    rows: Number((await q(`select count(*) as n from ${t(name)}`))[0].n),
  };
}
// sort order: no row precedes its predecessor
facts.matches.unsorted = Number((await q(`select count(*) as n from (select user_id, rank,
  lag(user_id) over () as pu, lag(rank) over () as pr from ${t('matches')})
  where pu is not null and (user_id < pu or (user_id = pu and rank <= pr))`))[0].n);
facts.soulmates.unsorted = Number((await q(`select count(*) as n from (select user_a,
  lag(user_a) over () as pa from ${t('soulmates')}) where pa is not null and user_a <= pa`))[0].n);
Object.assign(facts.matches, (await q(`select count(distinct user_id) as members,
  count(*) filter (where mutual) as mutual, count(*) filter (where isnan(score) or isnan(s_trait)) as nan,
  min(score) as min_score, max(score) as max_score from ${t('matches')}`))[0]);
Object.assign(facts.soulmates, (await q(`select count(*) filter (where user_a >= user_b) as unordered,
  count(*) - count(distinct user_a) as dup_a from ${t('soulmates')}`))[0]);
// Hive partitioning over the output root, as analysts query it
facts.hive = (await q(`select distinct cast(dt as varchar) as dt from read_parquet('${root}/*/matches/*.parquet', hive_partitioning = true)`)).map((r) => r.dt);
// the footer metadata analysts see
facts.kv = Object.fromEntries((await q(`select decode(key) as k, decode(value) as v from parquet_kv_metadata('${part}/matches/*.parquet')`))
  .map((r) => [r.k, r.v]));
console.log(JSON.stringify(facts));
