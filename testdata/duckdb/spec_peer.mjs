// The spec's scoring as DuckDB SQL: the peer bench/ compares batchmatch's
// whole process with (make bench-peers). It reads the profile shards,
// keeps the consenting members (the bench populations have no invalid
// rows: this peer does not quarantine), finds the compatible pairs with a
// latitude band join (|Δlat| · 111.19 km never exceeds the great-circle
// distance) and the spec's filters, scores them (spec §3, in double, ranked
// by the float32 score, ties to the lower id) and writes each member's top
// K as Parquet. Its own stage times go to stdout as JSON.
// Usage: node spec_peer.mjs PROFILES_GLOB AS_OF K Q OUT.parquet
import { DuckDBInstance } from '@duckdb/node-api';

const [glob, asOf, k, q, out] = process.argv.slice(2);
const Q = Number(q);
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
const times = {};
let t0 = performance.now();
const step = async (name, sql) => {
  await c.run(sql);
  const t = performance.now();
  times[name] = (t - t0) / 1000;
  t0 = t;
};
const byte = (col, i) => `('0x' || substr(hex(${col}), 2*${i}+1, 2))::INT`;
await step('load', `create table m as
  select user_id id, gender::INT g, seeking::INT s, age_min::INT amin, age_max::INT amax,
    year(DATE '${asOf}') - year(birth_date) - (case when month(DATE '${asOf}') < month(birth_date)
      or (month(DATE '${asOf}') = month(birth_date) and day(DATE '${asOf}') < day(birth_date)) then 1 else 0 end) age,
    lat, radians(lat) phi, radians(lon) lam, max_km::DOUBLE mk, max_km::DOUBLE / 111.19 + 1e-6 band,
    trait, coalesce(health_consent, false) and hla is not null h,
    list_transform(range(4), i -> ('0x' || substr(hex(hla), i*16+1, 16))::UBIGINT) hw,
    list_transform(range(${Q}), i -> ${byte('answers', 'i')}) ans,
    list_transform(range(${Q}), i -> ${byte('accept', 'i')}) acc,
    list_transform(range(${Q}), i -> ${byte('importance', 'i')}) imp
  from read_parquet('${glob}') where consent`);
await step('normalise', `create table n as
  select * exclude (trait), list_transform(trait, x -> x / sqrt(list_sum(list_transform(trait, y -> y::DOUBLE * y)))) t from m`);
const w = (l) => `[0, 1, 10, 50, 250][${l} + 1]`;
const okAB = (a, b, i) => `((${a}.acc[${i}+1] >> (${b}.ans[${i}+1] - 1)) & 1) = 1`;
const deal = (a, b) => `list_bool_and(list_transform(range(${Q}), i -> not (${a}.imp[i+1] = 4 and ${b}.ans[i+1] <> 0 and not ${okAB(a, b, 'i')})))`;
const both = (i) => `a.ans[${i}+1] <> 0 and b.ans[${i}+1] <> 0`;
const sum = (expr) => `list_sum(list_transform(range(${Q}), i -> ${expr}))::DOUBLE`;
await step('pairs', `create table near as
  select a.id ia, b.id ib,
    2 * 6371.0088 * asin(sqrt(least(1, pow(sin((b.phi - a.phi) / 2), 2) + cos(a.phi) * cos(b.phi) * pow(sin((b.lam - a.lam) / 2), 2)))) d,
    least(a.mk, b.mk) lim
  from n a join n b on a.id < b.id and b.lat between a.lat - a.band and a.lat + a.band
    and ((a.s >> b.g) & 1) = 1 and ((b.s >> a.g) & 1) = 1
    and b.age between a.amin and a.amax and a.age between b.amin and b.amax`);
await step('questions', `create table p as
  select ia, ib, d, lim, a.t ta, b.t tb, a.h and b.h hh, a.hw hwa, b.hw hwb,
    ${sum(`case when ${both('i')} then 1 else 0 end`)} cm,
    ${sum(`case when ${both('i')} then ${w('a.imp[i+1]')} else 0 end`)} dab,
    ${sum(`case when ${both('i')} and ${okAB('a', 'b', 'i')} then ${w('a.imp[i+1]')} else 0 end`)} nab,
    ${sum(`case when ${both('i')} then ${w('b.imp[i+1]')} else 0 end`)} dba,
    ${sum(`case when ${both('i')} and ${okAB('b', 'a', 'i')} then ${w('b.imp[i+1]')} else 0 end`)} nba
  from near join n a on a.id = ia join n b on b.id = ib
  where d <= lim and ${deal('a', 'b')} and ${deal('b', 'a')}`);
await step('score', `create table sc as
  select ia, ib, ((0.40 * st + 0.35 * sq + 0.10 * sd + (case when hh then 0.15 * sh else 0 end))
      / (0.85 + (case when hh then 0.15 else 0 end)))::FLOAT score
  from (select ia, ib, hh, (1 + list_dot_product(ta, tb)) / 2 st, 1 - d / lim sd,
      case when cm = 0 then 0 else greatest(0, sqrt((case when dab = 0 then 1 else nab / dab end)
        * (case when dba = 0 then 1 else nba / dba end)) - 1 / cm) end sq,
      case when hh then (case when ow = 0 then 0.5 else xw / ow end) else 0 end sh
    from (select *, list_sum(list_transform(range(4), i -> bit_count(xor(hwa[i+1], hwb[i+1]))))::DOUBLE xw,
        list_sum(list_transform(range(4), i -> bit_count(hwa[i+1] | hwb[i+1])))::DOUBLE ow
      from p))`);
await step('topk', `copy (select u user_id, v match_id, score from
    (select ia u, ib v, score from sc union all select ib, ia, score from sc)
  qualify row_number() over (partition by u order by score desc, v) <= ${Number(k)}
  order by u, score desc, v) to '${out}' (format parquet)`);
const n = (await c.runAndReadAll(`select (select count(*) from n) members, (select count(*) from sc) pairs`)).getRowObjectsJson()[0];
console.log(JSON.stringify({ ...times, members: Number(n.members), compatible_unordered_pairs: Number(n.pairs) }));
