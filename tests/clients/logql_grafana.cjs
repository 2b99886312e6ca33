// Parses LogQL queries with Grafana's own grammar (@grafana/lezer-logql, the parser of the Loki
// data source's query editor) and prints, for each, the offsets where that grammar found an error.
// Input: a JSON array of query strings on stdin. Output: a JSON array of {query, errors: [offset]}.
const { parser } = require('@grafana/lezer-logql');

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((query) => {
    const errors = [];
    parser.parse(query).iterate({ enter: (node) => { if (node.type.isError) errors.push(node.from); } });
    return { query, errors };
  });
  process.stdout.write(JSON.stringify(out));
});
