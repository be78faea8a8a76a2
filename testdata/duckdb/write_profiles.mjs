// Re-writes profile shards with DuckDB in its own physical types: trait as a
// FLOAT list, byte columns as BLOB, integers signed. pipeline/duckdb_test.go
// runs batchmatch on the result and on the original. TRAIT_TYPE is the
// DuckDB type of the trait column: FLOAT[] (a list, the default) or
// FLOAT[D] (a fixed-size array, which DuckDB also writes as a Parquet list,
// padding a NULL array with level-only entries).
// Usage: node write_profiles.mjs IN_GLOB OUT_FILE [TRAIT_TYPE]
import { DuckDBInstance } from '@duckdb/node-api';

const [input, out, traitType = 'FLOAT[]'] = process.argv.slice(2);
if (!/^FLOAT\[\d*\]$/.test(traitType)) throw new Error(`bad trait type ${traitType}`);
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
await c.run(`copy (select user_id::BIGINT as user_id, consent, health_consent,
    gender::INTEGER as gender, seeking::SMALLINT as seeking, birth_date,
    age_min::INTEGER as age_min, age_max::INTEGER as age_max, lat, lon, max_km,
    trait::${traitType} as trait, hla::BLOB as hla, answers::BLOB as answers,
    accept::BLOB as accept, importance::BLOB as importance
  from read_parquet('${input}')) to '${out}' (format parquet)`);
const d = (await c.runAndReadAll(`describe select * from read_parquet('${out}')`)).getRowObjectsJson();
console.log(JSON.stringify(d.map((r) => `${r.column_name}:${r.column_type}`)));
