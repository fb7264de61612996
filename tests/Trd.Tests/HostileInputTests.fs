/// Hostile input (issue 15): mutations of every input kind `trd` reads — configs, problem files, model config.json,
/// tokenizer.json, safetensors, command lines, run directories — run through the CLI in-process
/// (`Trd.Cli.Program.Run`). Each must end in exit 0 (a mutation that is still valid) or exit 2 with one message that
/// names the culprit (file, row, key or value), no stack trace and no .NET type name; a failing command leaves the
/// files already written as they were. `TRD_FUZZ_RANDOM=N` adds N random multi-key config mutations (200 by default;
/// the benchmark runs thousands: docs/performance.md, "Hostile input").
module Trd.Tests.HostileInputTests

open System
open System.IO
open System.Security.Cryptography
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open Expecto
open TorchSharp

// ---------------------------------------------------------------------------------------------------------------
// Running trd in-process

let private gate = obj ()

/// One command line through `trd`: (exit code, stdout, stderr). Console is redirected for the call, so calls are serial.
let run (args: string list) =
    lock gate (fun () ->
        use out = new StringWriter()
        use err = new StringWriter()
        let o, e = Console.Out, Console.Error
        Console.SetOut out
        Console.SetError err
        try
            let code = Trd.Cli.Program.Run(List.toArray args)
            code, out.ToString(), err.ToString()
        finally
            Console.SetOut o
            Console.SetError e)

/// What a message must never hold: a stack frame, a .NET namespace or an exception type's name.
let private leaks = Regex(@"(^|\n)\s+at \S|\b(System|Microsoft|TorchSharp)\.[A-Z]\w*|\b\w*Exception\b|\bNullReference|\bObject reference not set")

/// The outcome of one case, judged: None when it is acceptable, else what is wrong.
let judge (mustRefuse: bool) (culprits: string list) (code: int, _: string, err: string) =
    let message = err.Trim()
    if code = 0 then (if mustRefuse then Some "accepted (exit 0) input that must be refused" else None)
    elif code <> 2 then Some $"exit {code}, not 2: {message}"
    elif not (message.Contains "trd: ") then Some $"no 'trd: ' message: {message}"
    elif leaks.IsMatch message then Some $"a stack trace or a .NET name in: {message}"
    elif message.Length > 2000 then Some $"a message of {message.Length} characters (echoes must be cut)"
    elif culprits.Length > 0 && not (culprits |> List.exists (fun c -> message.Contains(c, StringComparison.OrdinalIgnoreCase))) then
        Some $"""names none of [{String.Join(", ", culprits)}]: {message}"""
    else None

/// Runs the cases and fails listing every bad outcome (the first 15); returns (cases, refused).
let private check (name: string) (cases: (string * string list * bool * (unit -> int * string * string)) seq) =
    let mutable count, refused = 0, 0
    let failures = ResizeArray<string>()
    for label, culprits, mustRefuse, f in cases do
        let outcome = f ()
        count <- count + 1
        let code, _, _ = outcome
        if code = 2 then refused <- refused + 1
        elif Environment.GetEnvironmentVariable "TRD_FUZZ_SHOW_ACCEPTED" = "1" then printfn "accepted: %s" label
        match judge mustRefuse culprits outcome with
        | Some problem -> failures.Add $"{label}: {problem}"
        | None -> ()
    if failures.Count > 0 then
        failtestf "%s: %d of %d cases went wrong:\n%s" name failures.Count count (String.Join("\n", failures |> Seq.truncate 15))
    count, refused

// ---------------------------------------------------------------------------------------------------------------
// The inputs: a valid tiny setup to mutate

let private root = Path.Combine(Path.GetTempPath(), "trd-hostile-" + Guid.NewGuid().ToString("N"))
let private file (name: string) = Path.Combine(root, name)

let private problemsText =
    String.Join("\n", File.ReadAllLines(Path.Combine(TestData.repositoryRoot, "configs", "tiny-problems.jsonl")) |> Array.truncate 4) + "\n"

/// The tiny config (random models, small tokenizer) over a copy of four of its problems, as a JSON object.
let private baseConfig () =
    Directory.CreateDirectory root |> ignore
    File.WriteAllText(file "problems.jsonl", problemsText)
    let text = File.ReadAllText(Path.Combine(TestData.repositoryRoot, "configs", "tiny.json"))
    let node = JsonNode.Parse(text, documentOptions = Text.Json.JsonDocumentOptions(CommentHandling = Text.Json.JsonCommentHandling.Skip)).AsObject()
    node["problems"] <- JsonValue.Create(file "problems.jsonl")
    node["eval"].["problems"] <- JsonArray(JsonValue.Create(file "problems.jsonl"))
    node

let private write (name: string) (text: string) =
    let path = file name
    File.WriteAllText(path, text)
    path

/// Every leaf of a JSON object as (dotted path, parent object, key).
let rec private leaves (prefix: string) (node: JsonObject) : (string * JsonObject * string) list =
    [ for KeyValue(key, value) in Seq.toList node do
        let path = if prefix = "" then key else $"{prefix}.{key}"
        match value with
        | :? JsonObject as o when o.Count > 0 -> yield! leaves path o
        | _ -> yield path, node, key ]

/// Values a hostile user puts anywhere.
let private hostileValues : (string * (unit -> JsonNode)) list =
    [ "-1", (fun () -> JsonValue.Create -1); "0", (fun () -> JsonValue.Create 0); "int max", (fun () -> JsonValue.Create Int32.MaxValue)
      "long min", (fun () -> JsonValue.Create Int64.MinValue); "1e308", (fun () -> JsonValue.Create 1e308); "-1e308", (fun () -> JsonValue.Create -1e308)
      "0.5", (fun () -> JsonValue.Create 0.5); "text", (fun () -> JsonValue.Create "x"); "empty text", (fun () -> JsonValue.Create "")
      "100k text", (fun () -> JsonValue.Create(String('a', 100_000))); "true", (fun () -> JsonValue.Create true); "null", (fun () -> null)
      "array", (fun () -> JsonArray(JsonValue.Create 1) :> JsonNode); "object", (fun () -> JsonObject() :> JsonNode) ]

/// A random tiny model directory (config.json, model.safetensors, tokenizer.json) written the way a run writes one.
let private modelDir =
    lazy
        (let config = Trd.Runtime.Pipeline.PipelineConfig.Parse((baseConfig ()).ToJsonString()).Validated()
         Trd.Runtime.Pipeline.ModelStore.Materialise(config.Student, file "models-base", "student"))

/// A copy of the model directory with one file replaced.
let private modelWith (name: string) (fileName: string) (contents: byte[]) =
    let directory = file $"model-{name}"
    if Directory.Exists directory then Directory.Delete(directory, true)
    Directory.CreateDirectory directory |> ignore
    for f in Directory.GetFiles modelDir.Value do File.Copy(f, Path.Combine(directory, Path.GetFileName f))
    File.WriteAllBytes(Path.Combine(directory, fileName), contents)
    directory

/// A digest of every file under a directory (names and bytes), to tell whether a command changed anything.
let private treeDigest (directory: string) =
    if not (Directory.Exists directory) then "absent"
    else
        Directory.GetFiles(directory, "*", SearchOption.AllDirectories)
        |> Array.filter (fun f -> not (f.EndsWith "commands.log") && not (f.EndsWith "trd.log"))
        |> Array.sort
        |> Array.map (fun f -> Path.GetRelativePath(directory, f) + ":" + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes f)))
        |> String.concat "\n"

let private randomCases =
    match Environment.GetEnvironmentVariable "TRD_FUZZ_RANDOM" with
    | null | "" -> 200
    | n -> int n

[<Tests>]
let tests =
    testSequenced <| testList "Hostile input" [
        testCase "configs: every leaf set to every hostile value, keys unknown, duplicated or missing, and random multi-key mutations" <| fun () ->
            let cases =
                seq {
                    let template = baseConfig ()
                    for path, _, key in leaves "" template do
                        for label, value in hostileValues do
                            let config = baseConfig ()
                            let _, parent, _ = leaves "" config |> List.find (fun (p, _, _) -> p = path)
                            parent[key] <- value ()
                            let name = write "config.json" (config.ToJsonString())
                            yield $"{path} = {label}", [ key; name ], false, (fun () -> run [ "check"; "--config"; name ])
                    for path, _, key in leaves "" template do
                        let config = baseConfig ()
                        let _, parent, _ = leaves "" config |> List.find (fun (p, _, _) -> p = path)
                        parent.Remove key |> ignore
                        let name = write "config.json" (config.ToJsonString())
                        yield $"{path} removed", [ key; name; "config" ], false, (fun () -> run [ "check"; "--config"; name ])
                        let config = baseConfig ()
                        let _, parent, _ = leaves "" config |> List.find (fun (p, _, _) -> p = path)
                        parent[key + "_typo"] <- JsonValue.Create 1
                        let name = write "config.json" (config.ToJsonString())
                        yield $"{path}_typo added", [ key + "_typo" ], true, (fun () -> run [ "check"; "--config"; name ])
                    let text = (baseConfig ()).ToJsonString()
                    let name = write "config.json" (text.Substring(0, text.Length - 1) + ", \"seed\": 7}")
                    yield "a key given twice", [ "seed" ], true, (fun () -> run [ "check"; "--config"; name ])
                    for label, text in [ "not JSON", "{ \"seed\": "; "an array", "[1, 2]"; "empty", ""; "binary", "\u0000\u0001\u0002" ] do
                        let name = write "config.json" text
                        yield label, [ name ], true, (fun () -> run [ "check"; "--config"; name ])
                    let rng = Random 15
                    for i in 1 .. randomCases do
                        let config = baseConfig ()
                        let all = leaves "" config
                        let changes =
                            [ for _ in 1 .. rng.Next(2, 4) ->
                                let path, parent, key = all[rng.Next all.Length]
                                let label, value = hostileValues[rng.Next hostileValues.Length]
                                parent[key] <- value ()
                                $"{path} = {label}", key ]
                        let name = write "config.json" (config.ToJsonString())
                        yield $"""random {i}: {String.Join(", ", changes |> List.map fst)}""", (name :: (changes |> List.map snd)), false,
                              (fun () -> run [ "check"; "--config"; name ])
                }
            let count, refused = check "configs" cases
            printfn "hostile configs: %d cases, %d refused with exit 2, %d accepted" count refused (count - refused)

        testCase "shaped methods in the config: every method parameter set to every hostile value, unknown methods and keys" <| fun () ->
            // Configs naming a method (no "recipe"): each parameter of each method, and the method word itself.
            let methodConfig (m: Trd.Core.ShapedMethod) =
                let config = baseConfig ()
                config.Remove "recipe" |> ignore
                let objective = JsonObject()
                objective["method"] <- JsonValue.Create m.ConfigName
                for p in m.Parameters do
                    objective[p.Key] <- (if p.Key = "corrected" then JsonValue.Create true :> JsonNode else JsonValue.Create p.Default)
                config["objective"] <- objective
                config
            let cases =
                seq {
                    for m in Trd.Core.ShapedMethods.all do
                        let name = write "config.json" ((methodConfig m).ToJsonString())
                        yield $"{m.ConfigName} with its defaults written out", [], false, (fun () -> run [ "check"; "--config"; name ])
                        for key in "method" :: [ for p in m.Parameters -> p.Key ] do
                            for label, value in hostileValues do
                                let config = methodConfig m
                                config["objective"].AsObject()[key] <- value ()
                                let name = write "config.json" (config.ToJsonString())
                                yield $"{m.ConfigName}: objective.{key} = {label}", [ key ], false, (fun () -> run [ "check"; "--config"; name ])
                        let config = methodConfig m
                        config["objective"].AsObject()["no_such_parameter"] <- JsonValue.Create 1
                        let name = write "config.json" (config.ToJsonString())
                        yield $"{m.ConfigName}: an unknown key", [ "no_such_parameter" ], true, (fun () -> run [ "check"; "--config"; name ])
                        let config = methodConfig m
                        config["recipe"] <- JsonValue.Create "trd"
                        let name = write "config.json" (config.ToJsonString())
                        yield $"{m.ConfigName} beside a recipe", [ "objective.method" ], true, (fun () -> run [ "check"; "--config"; name ])
                }
            let count, refused = check "shaped-method configs" cases
            printfn "hostile shaped-method configs: %d cases, %d refused with exit 2, %d accepted" count refused (count - refused)
            Expect.isGreaterThan refused (count / 2) "most hostile values are refused"

        testCase "problem files: rows with values of the wrong type, a key given twice, broken JSON, verl rows with bad messages" <| fun () ->
            let row = """{"id": "p1", "problem": "Compute 1 + 2.", "answer": "3", "solution": "1 + 2 = 3."}"""
            let rows =
                [ for field in [ "id"; "problem"; "answer"; "solution" ] do
                    for label, value in hostileValues do
                        let node = JsonNode.Parse(row).AsObject()
                        node[field] <- value ()
                        yield $"{field} = {label}", node.ToJsonString()
                  yield "a key given twice", row.TrimEnd('}') + ", \"answer\": \"4\"}"
                  yield "broken JSON", row.Substring(0, 20)
                  yield "not an object", "[1, 2, 3]"
                  yield "an unknown layout", """{"q": "x", "a": "y"}"""
                  yield "verl: a role that is a number", """{"prompt": [{"role": 1, "content": "x"}], "reward_model": {"ground_truth": "3"}}"""
                  yield "verl: content that is a number", """{"prompt": [{"role": "user", "content": 5}], "reward_model": {"ground_truth": "3"}}"""
                  yield "verl: a message that is a string", """{"prompt": ["hello"], "reward_model": {"ground_truth": "3"}}"""
                  yield "verl: no ground truth", """{"prompt": [{"role": "user", "content": "x"}], "reward_model": {}}"""
                  yield "a duplicate id", """{"id": "sum-00", "problem": "Compute 1 + 2.", "answer": "3"}""" ]
            let cases =
                seq {
                    for label, bad in rows do
                        let problems = write "bad-problems.jsonl" (problemsText + bad + "\n")
                        let config = baseConfig ()
                        config["problems"] <- JsonValue.Create problems
                        let name = write "config.json" (config.ToJsonString())
                        // Row 5: the four good rows come first.
                        yield label, [ "bad-problems.jsonl" ], false, (fun () -> run [ "check"; "--config"; name ])
                    let empty = write "empty.jsonl" ""
                    let config = baseConfig ()
                    config["problems"] <- JsonValue.Create empty
                    let name = write "config.json" (config.ToJsonString())
                    yield "an empty file", [ "empty.jsonl" ], true, (fun () -> run [ "check"; "--config"; name ])
                }
            let count, refused = check "problem files" cases
            printfn "hostile problem files: %d cases, %d refused" count refused

        testCase "model config.json: every size and setting field set to hostile values, checked before any weight is read" <| fun () ->
            let text = File.ReadAllText(Path.Combine(modelDir.Value, "config.json"))
            let fields = [ "vocab_size"; "hidden_size"; "intermediate_size"; "num_hidden_layers"; "num_attention_heads"; "num_key_value_heads"
                           "head_dim"; "max_position_embeddings"; "rope_theta"; "rms_norm_eps"; "tie_word_embeddings"; "torch_dtype"
                           "eos_token_id"; "model_type"; "architectures"; "hidden_act" ]
            let cases =
                seq {
                    for field in fields do
                        for label, value in hostileValues @ [ "3", (fun () -> JsonValue.Create 3); "1e8", (fun () -> JsonValue.Create 100_000_000) ] do
                            let node = JsonNode.Parse(text).AsObject()
                            node[field] <- value ()
                            let directory = modelWith "config" "config.json" (Text.Encoding.UTF8.GetBytes(node.ToJsonString()))
                            let config = baseConfig ()
                            config["student"] <- JsonNode.Parse($"""{{"path": "{directory}"}}""")
                            let name = write "config.json" (config.ToJsonString())
                            yield $"{field} = {label}", [ field; "config.json" ], false, (fun () -> run [ "check"; "--config"; name ])
                }
            let count, refused = check "model config.json" cases
            printfn "hostile model configs: %d cases, %d refused" count refused

        testCase "tokenizer.json: added-token ids huge, negative, duplicated or colliding with the vocabulary; fields missing or mistyped" <| fun () ->
            let text = File.ReadAllText(Path.Combine(modelDir.Value, "tokenizer.json"))
            let mutate (f: JsonObject -> unit) =
                let node = JsonNode.Parse(text).AsObject()
                f node
                node.ToJsonString()
            let added (i: int) (n: JsonObject) = n["added_tokens"].[i].AsObject()
            let vocabularyId (n: JsonObject) = (n["model"].["vocab"].AsObject() |> Seq.head).Value.GetValue<int>()
            let cases =
                [ "an added id of 10^9", [ "added_tokens[0].id" ], mutate (fun n -> (added 0 n)["id"] <- JsonValue.Create 1_000_000_000)
                  "an added id of -1", [ "added_tokens[0].id" ], mutate (fun n -> (added 0 n)["id"] <- JsonValue.Create -1)
                  "an added id that is text", [ "added_tokens[0].id" ], mutate (fun n -> (added 0 n)["id"] <- JsonValue.Create "x")
                  "two added tokens on one id", [ "added_tokens[1].id" ], mutate (fun n -> let first = (added 0 n).["id"].GetValue<int>() in (added 1 n)["id"] <- JsonValue.Create first)
                  "an added id that is a vocabulary entry's", [ "added_tokens[0].id" ], mutate (fun n -> (added 0 n)["id"] <- JsonValue.Create(vocabularyId n))
                  "empty added content", [ "added_tokens[0].content" ], mutate (fun n -> (added 0 n)["content"] <- JsonValue.Create "")
                  "no model", [ "model" ], mutate (fun n -> n.Remove "model" |> ignore)
                  "no vocabulary", [ "model.vocab" ], mutate (fun n -> n["model"].AsObject().Remove "vocab" |> ignore)
                  "a vocabulary id of 10^9", [ "model.vocab" ], mutate (fun n -> let v = n["model"].["vocab"].AsObject() in v[(Seq.head v).Key] <- JsonValue.Create 1_000_000_000)
                  "merges that are numbers", [ "model.merges" ], mutate (fun n -> n["model"].["merges"] <- JsonArray(JsonValue.Create 1))
                  "not JSON", [ "tokenizer.json" ], text.Substring(0, text.Length / 2) ]
                |> List.mapi (fun i (label, culprits, contents) ->
                    let directory = modelWith $"tokenizer-{i}" "tokenizer.json" (Text.Encoding.UTF8.GetBytes(contents: string))
                    label, "tokenizer.json" :: culprits, true, (fun () -> run [ "tokenize"; "-m"; directory; "hello" ]))
            let count, refused = check "tokenizer.json" cases
            printfn "hostile tokenizers: %d cases, %d refused" count refused

        testCase "safetensors: integer weights, NaN and infinite weights, a truncated file, a damaged header" <| fun () ->
            let weights = Path.Combine(modelDir.Value, "model.safetensors")
            let bytes = File.ReadAllBytes weights
            let rewritten (f: Collections.Generic.Dictionary<string, torch.Tensor> -> unit) =
                let tensors = Trd.Runtime.Checkpoints.SafeTensors.Open(weights).LoadAll()
                f tensors
                let path = file "rewritten.safetensors"
                Trd.Runtime.Checkpoints.SafeTensors.Save(path, tensors)
                File.ReadAllBytes path
            let name = "model.embed_tokens.weight"
            let cases =
                [ "an I32 weight", [ name ], rewritten (fun t -> t[name] <- t[name].to_type(torch.int32))
                  "a NaN weight", [ name ], rewritten (fun t -> t[name] <- t[name].clone().index_fill_(0, torch.tensor([| 0L |]), Double.NaN))
                  "an infinite weight", [ name ], rewritten (fun t -> t[name] <- t[name].clone().index_fill_(0, torch.tensor([| 1L |]), Double.PositiveInfinity))
                  "a truncated file", [ "model.safetensors" ], bytes[.. bytes.Length / 2]
                  "a damaged header", [ "model.safetensors" ], Array.append (BitConverter.GetBytes 16L) (Text.Encoding.ASCII.GetBytes "{\"x\": [1, 2, 3]}") ]
                |> List.mapi (fun i (label, culprits, contents) ->
                    let directory = modelWith $"weights-{i}" "model.safetensors" contents
                    label, culprits, true, (fun () -> run [ "generate"; "-m"; directory; "hi"; "--max-new-tokens"; "2"; "--device"; "cpu" ]))
            let count, refused = check "safetensors" cases
            printfn "hostile weights: %d cases, %d refused" count refused

        testCase "command lines: bad numbers, unknown commands and options, missing arguments — exit 2, one line naming the argument and --help" <| fun () ->
            let model = modelDir.Value
            let cases =
                [ [ "generate"; "-m"; model; "hi"; "-n"; "abc" ], [ "abc"; "--samples" ]
                  [ "generate"; "-m"; model; "hi"; "--top-k"; "-1" ], [ "top-k" ]
                  [ "generate"; "-m"; model; "hi"; "-t"; "1e308" ], [ "temperature" ]
                  [ "generate"; "-m"; model; "hi"; "--max-new-tokens"; "2147483647" ], [ "max" ]
                  [ "generate"; "-m"; model; "hi"; "--device"; "tpu" ], [ "tpu" ]
                  [ "generate"; "-m"; model; "hi"; "--top-p"; "0" ], [ "top" ]
                  [ "nosuch" ], [ "nosuch" ]
                  [ "rollout"; "--nosuch"; "--out"; file "x" ], [ "--nosuch" ]
                  [ "rollout" ], [ "--out" ]
                  [ "tokenize"; "-m"; file "nowhere"; "x" ], [ "nowhere" ]
                  [ "tokenize"; "-m"; model; "--text-file"; file "nowhere.txt" ], [ "nowhere.txt" ]
                  [ "tokenize"; "-m"; model ], [ "TEXT" ]
                  [ "serve"; "-m"; model; "--port"; "99999" ], [ "--port" ]
                  [ "serve"; "-m"; model; "--adapter"; file "nowhere" ], [ "nowhere" ]
                  [ "eval"; "--out"; file "not-a-run" ], [ "not-a-run" ]
                  [ "check"; "--config"; file "nowhere.json" ], [ "nowhere.json" ]
                  [ "report"; "--study"; file "nowhere" ], [ "nowhere" ] ]
                |> List.map (fun (args, culprits) -> String.Join(" ", args), culprits, true, (fun () -> run args))
            let count, _ = check "command lines" cases
            let _, _, err = run [ "generate"; "-m"; modelDir.Value; "hi"; "-n"; "abc" ]
            Expect.equal (err.Trim().Split('\n').Length) 1 "a parse error is one line, not the help"
            Expect.stringContains err "--help" "pointing at --help"
            let code, out, _ = run [ "tokenize"; "-m"; modelDir.Value; "--ids-only"; "@/etc/hostname" ]
            Expect.equal code 0 "@name is text"
            Expect.equal (out.Trim().Split(' ').Length) (Text.Encoding.UTF8.GetByteCount "@/etc/hostname") "one id per byte of the text itself, not the file's contents"
            printfn "hostile command lines: %d cases" count

        testCase "a failing command changes nothing already written, and a refused fresh run creates no directory" <| fun () ->
            let good = write "good.json" ((baseConfig ()).ToJsonString())
            let runDir = file "run"
            let code, _, err = run [ "rollout"; "--config"; good; "--out"; runDir ]
            Expect.equal code 0 err
            let before = treeDigest runDir
            let bad (edit: JsonObject -> unit) =
                let config = baseConfig ()
                edit config
                write $"bad-{Guid.NewGuid():N}.json" (config.ToJsonString())
            // (label, config, the commands that must refuse it in a fresh directory: a rollout needs no eval file)
            let cases =
                [ "a bad value", bad (fun c -> c["rollout"].["max_new_tokens"] <- JsonValue.Create(-3)), [ "rollout"; "run"; "eval" ]
                  "a missing eval file", bad (fun c -> c["eval"].["problems"] <- JsonArray(JsonValue.Create(file "nowhere.jsonl"))), [ "run"; "eval" ]
                  "an unknown device", bad (fun c -> c["device"] <- JsonValue.Create "tpu"), [ "rollout"; "run"; "eval" ]
                  "a model too big for this machine",
                  bad (fun c -> c["student"].["random"].["hidden_size"] <- JsonValue.Create 100_000; c["student"].["random"].["layers"] <- JsonValue.Create 900),
                  [ "rollout"; "run"; "eval" ]
                  "another config", bad (fun c -> c["seed"] <- JsonValue.Create 99), [] ]
            for label, config, refusing in cases do
                for command in [ "rollout"; "run"; "eval" ] do
                    let code, _, err = run [ command; "--config"; config; "--out"; runDir ]
                    Expect.equal code 2 $"{label}, {command}: {err}"
                    Expect.equal (treeDigest runDir) before $"{label}, {command}: the run directory is unchanged"
                    if List.contains command refusing then
                        let fresh = file $"fresh-{Guid.NewGuid():N}"
                        let code, _, _ = run [ command; "--config"; config; "--out"; fresh ]
                        Expect.equal code 2 $"{label}, {command} into a new directory"
                        Expect.isFalse (Directory.Exists fresh) $"{label}, {command}: no directory created before validation"
            // A damaged checkpoint state is named, and the run is left as it was.
            let trained = file "trained"
            let code, _, err = run [ "run"; "--config"; good; "--out"; trained ]
            Expect.equal code 0 err
            let checkpoints = Path.Combine(trained, "train", "checkpoints")
            let latest = Path.Combine(checkpoints, File.ReadAllText(Path.Combine(checkpoints, "latest")).Trim())
            let state = Path.Combine(latest, "trainer_state.json")
            let node = JsonNode.Parse(File.ReadAllText state).AsObject()
            node["step"] <- JsonValue.Create -5
            File.WriteAllText(state, node.ToJsonString())
            let before = treeDigest trained
            let outcome = run [ "train"; "--out"; trained; "--resume" ]
            Expect.isNone (judge true [ "trainer_state.json"; "step" ] outcome) "a step of -5 is named"
            Expect.equal (treeDigest trained) before "the run is unchanged"

        testCase "a torn or lost metrics line of a checkpointed step is restored from the checkpoint on resume" <| fun () ->
            let good = write "metrics.json" ((baseConfig ()).ToJsonString())
            let runDir = file "metrics-run"
            let code, _, err = run [ "run"; "--config"; good; "--out"; runDir ]
            Expect.equal code 0 err
            let metrics = Path.Combine(runDir, "train", "metrics.jsonl")
            let whole = File.ReadAllLines metrics
            // The last line torn in half and the one before it lost.
            File.WriteAllText(metrics, String.Join("\n", whole[.. whole.Length - 3]) + "\n" + whole[whole.Length - 1].Substring(0, 10))
            let code, _, err = run [ "train"; "--out"; runDir; "--resume" ]
            Expect.equal code 0 err
            Expect.sequenceEqual (File.ReadAllLines metrics) whole "every step's line back, as written"
    ]
