// The files the pinned Vercel CLI would upload from a directory, computed by the CLI's own
// code (its bundled @vercel/client `buildFileTree`, the function `vercel deploy` calls), so
// the checks judge exactly what Vercel receives, not a re-implementation of its rules.
//
//   node ci/vercel-files.mjs source DIR     what `vercel deploy` uploads from DIR (the CLI's
//                                           default ignores, /target for a Rust project,
//                                           then DIR/.vercelignore)
//   node ci/vercel-files.mjs prebuilt DIR   what `vercel deploy --prebuilt` uploads: DIR/.vercel/output
//                                           plus the files its .vc-config.json filePathMaps
//                                           name, less those DIR/.vercelignore matches
//   node ci/vercel-files.mjs defaults DIR   the rules the CLI applies before DIR/.vercelignore
//                                           (gitignore syntax, one per line)
//
// Prints the paths relative to DIR, sorted, one per line; a directory the CLI would
// upload as empty ends with "/". The CLI directory comes from LEADERBOARD_VERCEL_CLI (its
// node_modules/vercel), which ci/common.sh sets.
import fs from "node:fs";
import path from "node:path";

const [mode, dir] = process.argv.slice(2);
if (!["source", "prebuilt", "defaults"].includes(mode) || !dir) {
  console.error("usage: node ci/vercel-files.mjs source|prebuilt|defaults DIR");
  process.exit(2);
}
const cli = process.env.LEADERBOARD_VERCEL_CLI;
if (!cli) {
  console.error("LEADERBOARD_VERCEL_CLI is not set (the CLI's node_modules/vercel directory)");
  process.exit(2);
}

// The CLI is bundled into hashed chunks; find the one that defines buildFileTree and ask
// each of its bundled modules whether it is @vercel/client.
const chunks = path.join(cli, "dist", "chunks");
let client = null;
for (const name of fs.readdirSync(chunks).filter((f) => f.endsWith(".js")).sort()) {
  const file = path.join(chunks, name);
  if (!fs.readFileSync(file, "utf8").includes("async function buildFileTree")) continue;
  const mod = await import(file);
  for (const [key, value] of Object.entries(mod)) {
    if (!key.startsWith("require_") || typeof value !== "function") continue;
    let exported;
    try {
      exported = value();
    } catch {
      continue;
    }
    if (exported && typeof exported.buildFileTree === "function") {
      client = exported;
      break;
    }
  }
  if (client) break;
}
if (!client) {
  console.error(`@vercel/client's buildFileTree not found in ${chunks}`);
  process.exit(1);
}

const root = path.resolve(dir);
if (mode === "defaults") {
  const { ignores } = await client.getVercelIgnore(root, false);
  process.stdout.write(ignores.map((rule) => `${rule}\n`).join(""));
  process.exit(0);
}
const { fileList } = await client.buildFileTree(
  root,
  {
    isDirectory: true,
    prebuilt: mode === "prebuilt",
    vercelOutputDir: path.join(root, ".vercel", "output"),
  },
  () => {},
);
const out = [];
for (const abs of fileList) {
  const rel = path.relative(root, abs).split(path.sep).join("/");
  if (rel === "" || rel.startsWith("..")) {
    console.error(`the CLI listed a path outside ${root}: ${abs}`);
    process.exit(1);
  }
  const stat = fs.lstatSync(abs);
  out.push(stat.isDirectory() ? `${rel}/` : rel);
}
out.sort();
process.stdout.write(out.map((p) => `${p}\n`).join(""));
