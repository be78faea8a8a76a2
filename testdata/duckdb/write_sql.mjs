// Writes the result of one DuckDB query as a Parquet file, in DuckDB's own
// physical types: pipeline/duckdb_test.go builds hand-made corner cases
// (NULL arrays among valid ones) with it.
// Usage: node write_sql.mjs OUT_FILE SQL
import { DuckDBInstance } from '@duckdb/node-api';

const [out, sql] = process.argv.slice(2);
const db = await DuckDBInstance.create(':memory:');
const c = await db.connect();
await c.run(`copy (${sql}) to '${out}' (format parquet)`);
