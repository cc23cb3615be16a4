#!/usr/bin/env bash
# Re-fetch the browser assets that agent-sessions serves itself (GraphiQL, its explorer
# plugin, React, Swagger UI) from the npm registry at the pinned versions below, copy the
# built files into agent_sessions/static/vendor/, and write their licences, including those
# of every package bundled inside them, to THIRD_PARTY_LICENSES.txt.
#
# To update: change a version below, run `bash scripts/vendor_static.sh`, open /graphql and
# /docs, run `pytest tests/test_first_five_browser.py`, commit the result.
#
# Versions: GraphiQL 4 is the last line with a browser (UMD) build — 5 is ES modules with
# Monaco workers and needs a bundler — and React 18 the last with UMD builds.
set -euo pipefail

REACT=18.3.1
GRAPHIQL=4.1.2
EXPLORER=4.0.6
SWAGGER_UI=5.35.0

cd "$(dirname "$0")/.."
out=agent_sessions/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm checks each tarball against the registry's integrity hash.
(cd "$work" && npm pack --silent "react@$REACT" "react-dom@$REACT" "graphiql@$GRAPHIQL" \
    "@graphiql/plugin-explorer@$EXPLORER" "swagger-ui-dist@$SWAGGER_UI" >/dev/null)

unpack() {  # unpack TARBALL DIR
    mkdir -p "$work/$2" && tar xzf "$work/$1" -C "$work/$2" --strip-components=1
}
unpack "react-$REACT.tgz" react
unpack "react-dom-$REACT.tgz" react-dom
unpack "graphiql-$GRAPHIQL.tgz" graphiql
unpack "graphiql-plugin-explorer-$EXPLORER.tgz" explorer
unpack "swagger-ui-dist-$SWAGGER_UI.tgz" swagger-ui

# The packages bundled inside graphiql.min.js, from its source map: node_modules paths, and
# the GraphiQL monorepo's own packages (relative paths such as ../../graphiql-react).
node - "$work/graphiql/graphiql.min.js.map" >"$work/bundled.txt" <<'NODE'
const fs = require("fs");
const MONOREPO = {
  "graphiql-react": "@graphiql/react",
  "graphiql-toolkit": "@graphiql/toolkit",
  "graphiql-plugin-doc-explorer": "@graphiql/plugin-doc-explorer",
  "graphiql-plugin-history": "@graphiql/plugin-history",
  "codemirror-graphql": "codemirror-graphql",
  "graphql-language-service": "graphql-language-service",
};
const bundled = new Set();
for (const source of JSON.parse(fs.readFileSync(process.argv[2], "utf8")).sources) {
  const at = source.lastIndexOf("node_modules/");
  if (at >= 0) {
    const parts = source.slice(at + "node_modules/".length).split("/");
    bundled.add(parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]);
  } else {
    const top = source.split("/").find((p) => p !== ".." && p !== ".");
    if (MONOREPO[top]) bundled.add(MONOREPO[top]);
  }
}
bundled.delete("graphiql");
console.log([...bundled].sort().join("\n"));
NODE
# Their licence files come from an install of GraphiQL's dependencies, plus whichever bundled
# packages that install leaves out (optional peers; ranges that moved on since the build).
(cd "$work" && echo '{"private": true}' >package.json \
    && npm install --silent --ignore-scripts --no-audit --no-fund \
        "graphiql@$GRAPHIQL" "@graphiql/plugin-explorer@$EXPLORER" >/dev/null)
missing=()
while read -r name; do
    [ -f "$work/node_modules/$name/package.json" ] || missing+=("$name")
done <"$work/bundled.txt"
if [ ${#missing[@]} -gt 0 ]; then
    (cd "$work" && npm install --silent --ignore-scripts --no-audit --no-fund --no-save \
        "${missing[@]}" >/dev/null)
fi

rm -rf "$out"
mkdir -p "$out/react" "$out/graphiql" "$out/graphiql-plugin-explorer" "$out/swagger-ui"
cp "$work/react/umd/react.production.min.js" "$out/react/"
cp "$work/react-dom/umd/react-dom.production.min.js" "$out/react/"
cp "$work/graphiql/graphiql.min.js" "$work/graphiql/graphiql.min.css" "$out/graphiql/"
cp "$work/explorer/dist/index.umd.js" "$work/explorer/dist/style.css" \
    "$out/graphiql-plugin-explorer/"
cp "$work/swagger-ui/swagger-ui-bundle.js" "$work/swagger-ui/swagger-ui.css" "$out/swagger-ui/"

node - "$work" "$out" "$REACT" "$GRAPHIQL" "$EXPLORER" "$SWAGGER_UI" <<'NODE'
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const [work, out, react, graphiql, explorer, swaggerUi] = process.argv.slice(2);
const modules = path.join(work, "node_modules");

function licenceText(dir) {
  const name = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  return name ? fs.readFileSync(path.join(dir, name), "utf8").trim() : null;
}

function section(title, licence, text) {
  return `${"=".repeat(78)}\n${title}\nLicence: ${licence}\n\n${text || "(no licence file shipped; see the licence named above)"}\n`;
}

function installed(name) {
  const dir = path.join(modules, name);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  return { dir, meta };
}

const bundled = fs.readFileSync(path.join(work, "bundled.txt"), "utf8").split("\n").filter(Boolean);
// React is loaded from its own files; the bundle carries only its small JSX runtime.
const explorerMeta = installed("@graphiql/plugin-explorer").meta;
const explorerBundled = Object.keys(explorerMeta.dependencies || {});

let text = "Third-party software served by agent-sessions from agent_sessions/static/vendor/.\n" +
  "Written by scripts/vendor_static.sh; do not edit by hand.\n\n";
text += section(`react ${react} and react-dom ${react} (react/)`, "MIT",
  licenceText(path.join(work, "react")));
const graphiqlLicence = licenceText(path.join(work, "graphiql"));
text += section(`graphiql ${graphiql} (graphiql/)`, "MIT", graphiqlLicence);
for (const name of bundled) {
  // The source map names packages, not versions: the licence is that of the installed one.
  const { dir, meta } = installed(name);
  let body = licenceText(dir);
  if (!body && name.startsWith("@graphiql/")) body = graphiqlLicence;  // same monorepo
  text += section(`${name}, bundled in graphiql/graphiql.min.js (licence file of ${meta.version})`,
    meta.license || "see the package", body);
}
text += section(`@graphiql/plugin-explorer ${explorer} (graphiql-plugin-explorer/)`,
  explorerMeta.license, licenceText(path.join(work, "explorer")) || graphiqlLicence);
for (const name of explorerBundled) {
  const { dir, meta } = installed(name);
  text += section(`${name} ${meta.version}, bundled in graphiql-plugin-explorer/index.umd.js`,
    meta.license, licenceText(dir));
}
const swagger = path.join(work, "swagger-ui");
text += section(`swagger-ui-dist ${swaggerUi} (swagger-ui/)`, "Apache-2.0",
  licenceText(swagger) + "\n\nNOTICE:\n" + fs.readFileSync(path.join(swagger, "NOTICE"), "utf8").trim() +
  "\n\nLicences of the packages bundled in swagger-ui-bundle.js (from the package):\n\n" +
  fs.readFileSync(path.join(swagger, "swagger-ui-bundle.js.LICENSE.txt"), "utf8").trim());
fs.writeFileSync(path.join(out, "THIRD_PARTY_LICENSES.txt"), text);

// What was vendored, from which package, with a hash to notice hand edits.
const pins = { react: `react@${react}, react-dom@${react}`, graphiql: `graphiql@${graphiql}`,
  "graphiql-plugin-explorer": `@graphiql/plugin-explorer@${explorer}`,
  "swagger-ui": `swagger-ui-dist@${swaggerUi}` };
let versions = "";
for (const dir of Object.keys(pins).sort()) {
  for (const file of fs.readdirSync(path.join(out, dir)).sort()) {
    const sha = crypto.createHash("sha256").update(fs.readFileSync(path.join(out, dir, file))).digest("hex");
    versions += `${dir}/${file}  ${pins[dir]}  sha256:${sha}\n`;
  }
}
fs.writeFileSync(path.join(out, "VERSIONS"), versions);
NODE
echo "vendored into $out:"
cat "$out/VERSIONS"
