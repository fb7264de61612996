/// The `trd` executable as a user runs it: help, exit codes, tokenize, and `trd run` on configs/tiny.json killed at
/// random moments and resumed, ending with the same evaluation as an uninterrupted run.
module Trd.Tests.CliTests

open System
open System.Diagnostics
open System.IO
open Expecto
open TorchSharp

/// trd.dll in the CLI project's own output directory, built in the same configuration as these tests.
let trdDll =
    lazy
        (let configuration = if AppContext.BaseDirectory.Contains "/Debug/" then "Debug" else "Release"
         let path = Path.Combine(TestData.repositoryRoot, "src", "Trd.Cli", "bin", configuration, "net10.0", "linux-x64", "trd.dll")
         if not (File.Exists path) then failwithf "%s is missing: build src/Trd.Cli (the test project references it)" path
         path)

let private start (args: string list) =
    let psi = ProcessStartInfo("dotnet", trdDll.Force() :: args, WorkingDirectory = TestData.repositoryRoot,
                               RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    Process.Start psi

let private trd (args: string list) =
    use p = start args
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEndAsync()
    if not (p.WaitForExit(TimeSpan.FromMinutes 5.0)) then p.Kill true; failwithf "trd %A timed out" args
    p.ExitCode, out.Result, err.Result

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "trd-cli-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

let private tinyConfig = Path.Combine(TestData.repositoryRoot, "configs", "tiny.json")

/// What a finished run's evaluation and final weights are.
let private finalState (run: string) =
    let trained = File.ReadAllText(Path.Combine(run, "eval", "trained", "summary.json"))
    let baseline = File.ReadAllText(Path.Combine(run, "eval", "base", "summary.json"))
    let checkpoints = Path.Combine(run, "train", "checkpoints")
    let latest = File.ReadAllText(Path.Combine(checkpoints, "latest")).Trim()
    let adapter = File.ReadAllBytes(Path.Combine(checkpoints, latest, "adapter", "adapter_model.safetensors"))
    let corpus = File.ReadAllText(Path.Combine(run, "corpus", "rollouts.jsonl")) + File.ReadAllText(Path.Combine(run, "corpus", "refinements.jsonl"))
    trained, baseline, adapter, corpus

let private gymStudent () = Trd.Runtime.Gym.GymModels.Ensure(Trd.Runtime.Gym.GymModels.Student, Trd.Runtime.Gym.GymModels.DefaultCacheRoot())

/// `trd serve` of `directory` on `port` (0: a free one): the process and its first line (its address).
let private serve (directory: string) (port: int) =
    let server = start [ "serve"; "--model"; directory; "--port"; string port ]
    server, server.StandardOutput.ReadLine()

let private stop (server: Process) =
    server.Kill true
    server.WaitForExit()
    server.Dispose()

/// `count` servers of the gym student on free ports: `f` gets its directory and the servers' first lines (their
/// addresses); the servers are stopped after.
let private withServers (count: int) (f: string -> string list -> unit) =
    let directory = gymStudent ()
    let servers = List.init count (fun _ -> serve directory 0)
    try f directory (List.map snd servers)
    finally servers |> List.iter (fst >> stop)

/// The gym student served by one `trd serve`.
let private withServedStudent (f: string -> string -> unit) = withServers 1 (fun directory lines -> f directory lines.Head)

let private urlIn (line: string) = Text.RegularExpressions.Regex.Match(line, @"http://[^ ]+").Value

/// A config file `name` in `dir`: `json` over configs/tiny-problems.jsonl with the student at `directory`, served by
/// `server` (a "server" object's JSON) when given.
let private studentConfig (dir: string) (name: string) (json: string) (directory: string) (server: string option) =
    let node = Text.Json.Nodes.JsonNode.Parse(json).AsObject()
    node["problems"] <- Text.Json.Nodes.JsonValue.Create(Path.Combine(TestData.repositoryRoot, "configs", "tiny-problems.jsonl"))
    node["student"].AsObject()["path"] <- Text.Json.Nodes.JsonValue.Create directory
    server |> Option.iter (fun s -> node["student"].AsObject()["server"] <- Text.Json.Nodes.JsonNode.Parse s)
    let path = Path.Combine(dir, name)
    File.WriteAllText(path, node.ToJsonString())
    path

[<Tests>]
let tests =
    testSequenced <| testList "Cli" [
        test "--help lists every command; each command has help" {
            let code, out, _ = trd [ "--help" ]
            Expect.equal code 0 "exit 0"
            for c in [ "rollout"; "refine"; "train"; "eval"; "analyze"; "run"; "tokenize"; "generate" ] do
                Expect.stringContains out c $"lists {c}"
            let code, out, _ = trd [ "train"; "--help" ]
            Expect.equal code 0 "exit 0"
            Expect.stringContains out "--resume" "train --help shows --resume"
            // Every command's help works although its required options are missing, and ends with two examples.
            for c in [ "rollout"; "refine"; "train"; "eval"; "analyze"; "run"; "check"; "tokenize"; "generate"; "gym"; "study"; "report"; "serve" ] do
                let code, out, err = trd [ c; "--help" ]
                Expect.equal code 0 $"{c} --help: {err}"
                let tail = out.TrimEnd().Split('\n') |> Array.rev |> Array.truncate 3 |> Array.rev
                Expect.equal tail[0] "Examples:" $"{c} --help ends with its examples"
                Expect.isTrue (tail[1].Contains $"trd {c}" && tail[2].Contains $"trd {c}") $"{c}: two examples of itself"
        }

        test "tokenize --ids-only prints the tokenizer's ids" {
            let dir = TestData.qwen3ModelDirectory.Force()
            let text = "Wait, 12+7=19 \\boxed{19}"
            let code, out, err = trd [ "tokenize"; "--model"; dir; "--ids-only"; text ]
            Expect.equal code 0 err
            let expected = TestData.qwen3Tokenizer.Force().Encode text
            Expect.sequenceEqual (out.Trim().Split(' ') |> Array.map int) expected "same ids"
        }

        test "a bad config exits 2 naming the key; a missing file exits 2 naming it" {
            let dir = tempDir ()
            let config = Path.Combine(dir, "bad.json")
            File.WriteAllText(config, """{"problems": "p.jsonl", "student": {"path": "."}, "setting": "opsd", "train": {"epochs": 0}}""")
            let code, _, err = trd [ "rollout"; "--config"; config; "--out"; Path.Combine(dir, "run") ]
            Expect.equal code 2 err
            Expect.stringContains err "train.epochs" "names the key"
            let code, _, err = trd [ "rollout"; "--config"; Path.Combine(dir, "missing.json"); "--out"; Path.Combine(dir, "run") ]
            Expect.equal code 2 err
            Expect.stringContains err "missing.json" "names the file"
        }

        test "trd run on configs/tiny.json completes; killed at random moments and resumed, it ends the same" {
            let dir = tempDir ()
            let reference = Path.Combine(dir, "reference")
            let clock = Stopwatch.StartNew()
            let code, _, err = trd [ "run"; "--config"; tinyConfig; "--out"; reference ]
            Expect.equal code 0 err
            let uninterrupted = clock.Elapsed
            for part in [ "manifest.json"; "config.json"; "logs/trd.log"; "train/metrics.jsonl"; "analysis/analysis.json"; "corpus/corpus.parquet" ] do
                Expect.isTrue (File.Exists(Path.Combine(reference, part))) $"{part} written"
            let code, _, err = trd [ "run"; "--config"; tinyConfig; "--out"; reference ]
            Expect.equal code 2 "a second run into the same directory without --resume is refused"
            Expect.stringContains err "--resume" "says how to continue"

            let run = Path.Combine(dir, "killed")
            let random = Random(20261123)
            let mutable kills = 0
            for attempt in 0 .. 2 do
                use p = start ([ "run"; "--config"; tinyConfig; "--out"; run ] @ (if attempt = 0 then [] else [ "--resume" ]))
                let wait = TimeSpan.FromSeconds(0.5 + random.NextDouble() * uninterrupted.TotalSeconds * 0.8)
                if not (p.WaitForExit wait) then
                    p.Kill true
                    p.WaitForExit()
                    kills <- kills + 1
            let code, _, err = trd [ "run"; "--config"; tinyConfig; "--out"; run; "--resume" ]
            Expect.equal code 0 err
            Expect.isGreaterThan kills 0 "at least one run was killed mid-way"
            let t1, b1, a1, c1 = finalState reference
            let t2, b2, a2, c2 = finalState run
            Expect.equal c2 c1 "same corpus"
            Expect.equal (Convert.ToHexString a2) (Convert.ToHexString a1) "same final adapter"
            Expect.equal b2 b1 "same base evaluation"
            Expect.equal t2 t1 "same final evaluation"
        }
    
        test "trd run with every shaped method on configs/tiny.json (--set recipe=null --set objective.method=…)" {
            let dir = tempDir ()
            let run = Path.Combine(dir, "run")
            let code, _, err = trd [ "run"; "--config"; tinyConfig; "--out"; run; "--set"; "objective.method=tropd-switch" ]
            Expect.equal code 2 "a recipe and a method together are refused"
            Expect.stringContains err "--set recipe=null" "and the message says how to leave the recipe out"
            Expect.isFalse (Directory.Exists run) "nothing written"
            let code, out, err = trd [ "run"; "--config"; tinyConfig; "--out"; run; "--set"; "recipe=null"; "--set"; "objective.method=tropd-switch"; "--set"; "objective.threshold=0.5" ]
            Expect.equal code 0 err
            Expect.stringContains (out + err) "TrOPD (switch)" "the run names the method"
            let metrics = File.ReadAllLines(Path.Combine(run, "train", "metrics.jsonl")) |> Array.filter (fun l -> l.Contains "\"step\"")
            Expect.isNonEmpty metrics "steps logged"
            for line in metrics do Expect.stringContains line "\"switched_fraction\":" "the switched fraction per step"
            Expect.stringContains (File.ReadAllText(Path.Combine(run, "config.json"))) "\"threshold\": 0.5" "config.json records the parameter"
            // Every other method at its defaults completes the same command (rollout, train, eval, analyze).
            for m in Trd.Core.ShapedMethods.all |> Array.filter (fun m -> m.ConfigName <> "tropd-switch") do
                let out = Path.Combine(dir, m.ConfigName)
                let code, _, err = trd [ "run"; "--config"; tinyConfig; "--out"; out; "--set"; "recipe=null"; "--set"; $"objective.method={m.ConfigName}" ]
                Expect.equal code 0 $"{m.ConfigName}: {err}"
                Expect.isTrue (File.Exists(Path.Combine(out, "eval", "trained", "summary.json"))) $"{m.ConfigName}: evaluated"
                let lines = File.ReadAllLines(Path.Combine(out, "train", "metrics.jsonl")) |> Array.filter (fun l -> l.Contains "\"step\"")
                Expect.isNonEmpty lines $"{m.ConfigName}: steps logged"
                Expect.stringContains lines[0] "\"masked_fraction\":" $"{m.ConfigName}: the plan logged"
                // At its defaults a shaped method is written back as the recipe's name, like the paper's five.
                Expect.stringContains (File.ReadAllText(Path.Combine(out, "config.json"))) $"\"recipe\": \"{m.ConfigName}\"" $"{m.ConfigName}: config.json"
        }

        test "one writer per run directory: a second command exits 3 naming the holder; a killed holder's lock is taken over" {
            let dir = tempDir ()
            let run = Path.Combine(dir, "run")
            use first = start [ "run"; "--config"; tinyConfig; "--out"; run ]
            let note = Path.Combine(run, ".trd.lock.json")
            let clock = Stopwatch.StartNew()
            while not (File.Exists note) && clock.Elapsed < TimeSpan.FromMinutes 1.0 && not first.HasExited do
                Threading.Thread.Sleep 50
            Expect.isTrue (File.Exists note) "the first run holds the lock"
            let code, _, err = trd [ "run"; "--config"; tinyConfig; "--out"; run; "--resume" ]
            Expect.equal code 3 err
            Expect.stringContains err "in use by another process" "says the directory is busy"
            Expect.stringContains err $"pid {first.Id}" "names the holder"
            first.Kill true
            first.WaitForExit()
            let code, _, err = trd [ "rollout"; "--out"; run ]
            Expect.equal code 0 err
            Expect.stringContains err "is gone; its lock is taken over" "the dead holder's lock is taken over, with a message"
            Expect.isFalse (File.Exists note) "the note goes with the lock"
        }
    
        test "./trd --install links the clone's trd into a directory, and the link runs trd from anywhere" {
            let dir = tempDir ()
            let run (file: string) (args: string list) (cwd: string) =
                let psi = ProcessStartInfo(file, args, WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
                use p = Process.Start psi
                let out, err = p.StandardOutput.ReadToEnd(), p.StandardError.ReadToEnd()
                p.WaitForExit()
                p.ExitCode, out, err
            let code, _, err = run (Path.Combine(TestData.repositoryRoot, "trd")) [ "--install"; dir ] TestData.repositoryRoot
            Expect.equal code 0 err
            Expect.stringContains err $"linked as {dir}/trd" "says where"
            let code, out, err = run (Path.Combine(dir, "trd")) [ "check"; "--config"; Path.Combine(TestData.repositoryRoot, "configs", "gym-opd.json") ] dir
            Expect.equal code 0 err
            Expect.stringContains out "valid" "the linked trd runs a command from another directory"
        }

        test "the gym configs check and run: configs/gym-opsd.json end to end, --set overrides typed and named, the resolved recipe printed and recorded" {
            for name in [ "gym-opd"; "gym-opsd" ] do
                let code, out, err = trd [ "check"; "--config"; Path.Combine(TestData.repositoryRoot, "configs", name + ".json") ]
                Expect.equal code 0 err
                Expect.stringContains out "recipe TRD" $"{name}: the resolved recipe"
            let dir = tempDir ()
            let config = Path.Combine(TestData.repositoryRoot, "configs", "gym-opsd.json")
            let code, _, err = trd [ "run"; "--config"; config; "--out"; Path.Combine(dir, "run"); "--set"; "train.epochs=1"; "--set"; "eval.k=4" ]
            Expect.equal code 0 err
            Expect.stringContains err "recipe TRD: forward KL" "the resolved recipe is printed at start"
            Expect.isFalse (err.Contains "step 1:") "steps go to the log"
            Expect.stringContains (File.ReadAllText(Path.Combine(dir, "run", "logs", "trd.log"))) "step 1:" "the log keeps them"
            let manifest = Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "run", "manifest.json")))
            Expect.stringContains (string manifest) "forward KL, full vocabulary" "the manifest records the resolved recipe"
            let recorded = Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "run", "config.json")))
            Expect.equal (recorded["train"].["epochs"].GetValue<int>()) 1 "the override is in the recorded config"
            Expect.equal (recorded["eval"].["k"].GetValue<int>()) 4 "both overrides"
            let summary = Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "run", "eval", "trained", "summary.json")))
            Expect.equal (summary["datasets"].[0].["k"].GetValue<int>()) 4 "evaluated with K = 4"
            let code, _, err = trd [ "check"; "--config"; config; "--set"; "train.learning_rate=fast" ]
            Expect.equal code 2 err
            Expect.stringContains err "train.learning_rate: expected a number" "a mistyped override names its key"
            let code, _, err = trd [ "check"; "--config"; config; "--set"; "train.learnig_rate=1" ]
            Expect.equal code 2 err
            Expect.stringContains err "learnig_rate" "an unknown key is named"
            let code, out, _ = trd [ "help"; "run" ]
            Expect.equal code 0 "trd help run"
            Expect.stringContains out "--set" "its options"
            Expect.stringContains out "Examples:" "and examples"
        }

        test "trd serve answers vLLM's /v1/completions with the tokens the in-process sampler draws, and prompt_logprobs with the model's top-K" {
            withServedStudent (fun directory line ->
                Expect.stringContains line "loopback only" "says it listens on this machine only"
                let url = urlIn line
                use http = new Net.Http.HttpClient(BaseAddress = Uri url)
                Expect.equal (http.GetAsync("/health").Result.StatusCode) Net.HttpStatusCode.OK "/health"
                let models = Text.Json.Nodes.JsonNode.Parse(http.GetStringAsync("/v1/models").Result)
                Expect.equal (models["data"].[0].["id"].GetValue<string>()) (Path.GetFileName directory) "/v1/models names the model"
                let post (body: string) =
                    let response = http.PostAsync("/v1/completions", new Net.Http.StringContent(body, Text.Encoding.UTF8, "application/json")).Result
                    int response.StatusCode, Text.Json.Nodes.JsonNode.Parse(response.Content.ReadAsStringAsync().Result)
                let prompt = [| 379; 32; 55; 32; 51; 32; 56; 46 |]
                let code, body = post $"""{{"prompt": [{String.Join(", ", prompt)}], "n": 3, "max_tokens": 10, "seed": 5, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "return_token_ids": true}}"""
                Expect.equal code 200 (string body)
                let loaded = Trd.Runtime.Pipeline.ModelStore.Load(directory, torch.CPU)
                use _ = loaded.Model
                let options = Trd.Runtime.Generation.SamplingOptions(Temperature = 0.6, TopP = 0.95, TopK = 20, MaxNewTokens = 10, SamplesPerPrompt = 3, PromptSeeds = [| 5L |],
                                                                      StopTokenIds = loaded.Tokenizer.StopIds, VocabularyLimit = loaded.Tokenizer.VocabularySize)
                let expected = Trd.Runtime.Generation.Sampler.Generate(loaded.Model, [| prompt |], options)
                let choices = body["choices"].AsArray()
                Expect.equal choices.Count 3 "n choices"
                for i in 0 .. 2 do
                    let served = choices[i].["token_ids"].AsArray() |> Seq.map (fun x -> x.GetValue<int>()) |> Seq.toArray
                    Expect.sequenceEqual served expected[i].Tokens $"choice {i}: the in-process sampler's tokens"
                    Expect.equal (choices[i].["finish_reason"].GetValue<string>()) (if expected[i].Truncated then "length" else "stop") $"choice {i}: finish reason"
                let code, body = post $"""{{"prompt": [{String.Join(", ", prompt)}], "max_tokens": 1, "prompt_logprobs": 3}}"""
                Expect.equal code 200 (string body)
                let scores = Trd.Runtime.Scoring.TeacherScoring.TopK(loaded.Model, [| struct ("p", Trd.Runtime.Scoring.ScoringPair(prompt[..0], prompt[1..])) |], 3).[0]
                let logprobs = body["choices"].[0].["prompt_logprobs"].AsArray()
                Expect.isNull logprobs[0] "none for the first prompt token"
                for t in 0 .. prompt.Length - 2 do
                    let position = logprobs[t + 1].AsObject()
                    for j in 0 .. 2 do
                        let id = scores.Ids[t * 3 + j]
                        Expect.equal (position[string id].["rank"].GetValue<int>()) (j + 1) $"position {t + 1}: rank {j + 1}"
                        Expect.floatClose Accuracy.high (position[string id].["logprob"].GetValue<float>()) (float scores.LogProbs[t * 3 + j]) $"position {t + 1}: log-probability of {id}"
                    Expect.isTrue (position.ContainsKey(string prompt[t + 1])) $"position {t + 1}: the prompt's own token"
                // SGLang's /generate: sample 0 seeded 7 is vLLM's sample 2 of seed 5 (sample j draws from seed + j).
                let generated = http.PostAsync("/generate", new Net.Http.StringContent($"""{{"input_ids": [{String.Join(", ", prompt)}], "sampling_params": {{"max_new_tokens": 10, "sampling_seed": 7, "temperature": 0.6, "top_p": 0.95, "top_k": 20}}}}""", Text.Encoding.UTF8, "application/json")).Result
                let one = Text.Json.Nodes.JsonNode.Parse(generated.Content.ReadAsStringAsync().Result)
                Expect.sequenceEqual (one["output_ids"].AsArray() |> Seq.map (fun x -> x.GetValue<int>()) |> Seq.toArray) expected[2].Tokens "/generate: the same stream"
                // Concurrent requests are grouped into sampler batches, and each still gets its own tokens.
                let requests = Array.init 16 (fun i -> [| 379; 32 + i; 55; 32; 51 |], int64 (100 + i))
                let answers =
                    requests |> Array.map (fun (p, seed) -> Threading.Tasks.Task.Run(fun () -> post $"""{{"prompt": [{String.Join(", ", p)}], "n": 2, "max_tokens": 8, "seed": {seed}, "return_token_ids": true}}"""))
                    |> Threading.Tasks.Task.WhenAll |> _.Result
                let counter (name: string) =
                    http.GetStringAsync("/metrics").Result.Split('\n') |> Array.find (fun l -> l.StartsWith(name + " ")) |> fun l -> int64 (l.Split(' ')[1])
                Expect.isLessThan (counter "trd:sampler_batches_total") (counter "trd:requests_total") "some requests shared a sampler call"
                for (p, seed), (code, body) in Array.zip requests answers do
                    Expect.equal code 200 (string body)
                    let alone = Trd.Runtime.Generation.Sampler.Generate(loaded.Model, [| p |],
                                    Trd.Runtime.Generation.SamplingOptions(Temperature = 1.0, TopP = 1.0, TopK = 0, MaxNewTokens = 8, SamplesPerPrompt = 2, PromptSeeds = [| seed |],
                                                                           StopTokenIds = loaded.Tokenizer.StopIds, VocabularyLimit = loaded.Tokenizer.VocabularySize))
                    for j in 0 .. 1 do
                        Expect.sequenceEqual (body["choices"].[j].["token_ids"].AsArray() |> Seq.map (fun x -> x.GetValue<int>()) |> Seq.toArray) alone[j].Tokens $"seed {seed}, sample {j}: its own tokens"
                let code, body = post $"""{{"prompt": [{String.Join(", ", prompt)}], "n": 3, "max_tokens": 10, "seed": 5, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "logprobs": 0}}"""
                Expect.equal code 200 (string body)
                let lp = body["choices"].[1].["logprobs"].["token_logprobs"].AsArray() |> Seq.map (fun x -> x.GetValue<float32>()) |> Seq.toArray
                Expect.sequenceEqual lp expected[1].LogProbs "logprobs: 0 gives the sampled tokens' log-probabilities"
                let code, _ = post """{"prompt": [1, 2, 3], "logprobs": 5}"""
                Expect.equal code 400 "a top-N of generated tokens is refused, not faked"
                let code, body = post """{"prompt": [1, 2, 3], "n": 0}"""
                Expect.equal code 400 "a bad request is 400"
                Expect.stringContains (body["message"].GetValue<string>()) "n: must be ≥ 1" "naming the field"
                let code, body = post """{"prompt": [1, 2, 99999999]}"""
                Expect.equal code 400 "an id outside the vocabulary is 400"
                Expect.stringContains (body["message"].GetValue<string>()) "outside the vocabulary" "naming it")
        }
    
        test "configs naming servers (vLLM's API; SGLang's over two replicas) draw the same corpus token for token as the in-process run (OPSD rollouts and refinements)" {
            withServers 2 (fun directory lines ->
                let urls = lines |> List.map urlIn
                let dir = tempDir ()
                let json = """{"setting": "opsd", "recipe": "trd", "device": "cpu", "student": {"dtype": "float32"},
                    "rollout": {"max_new_tokens": 24, "prompt_budget": 256, "batch_size": 3},
                    "refine": {"max_new_tokens": 24, "prompt_budget": 512, "batch_size": 3}}"""
                let runs =
                    [ "local", None
                      "vllm", Some $"{{\"engine\": \"vllm\", \"url\": \"{urls[0]}\", \"max_concurrency\": 2}}"
                      "sglang", Some $"{{\"engine\": \"sglang\", \"url\": [\"{urls[0]}\", \"{urls[1]}\"]}}" ]
                for name, server in runs do
                    let config = studentConfig dir $"{name}.json" json directory server
                    for stage in [ "rollout"; "refine" ] do
                        let code, _, err = trd [ stage; "--config"; config; "--out"; Path.Combine(dir, name) ]
                        Expect.equal code 0 err
                        if server.IsSome && stage = "rollout" then Expect.stringContains err urls[0] "the served run names its server"
                for name in [ "vllm"; "sglang" ] do
                    for file in [ "rollouts.jsonl"; "refinements.jsonl" ] do
                        Expect.equal (File.ReadAllText(Path.Combine(dir, name, "corpus", file))) (File.ReadAllText(Path.Combine(dir, "local", "corpus", file))) $"{name} {file}: the same records")
        }

        test "a served student is evaluated on its server, the trained one through its LoRA adapter (/v1/load_lora_adapter), with the in-process run's samples" {
            withServedStudent (fun directory line ->
                let url = urlIn line
                let dir = tempDir ()
                let json = $"""{{"setting": "opsd", "recipe": "trd", "device": "cpu", "student": {{"dtype": "float32"}},
                    "rollout": {{"max_new_tokens": 16, "prompt_budget": 256, "batch_size": 8}},
                    "refine": {{"max_new_tokens": 16, "prompt_budget": 512, "batch_size": 8, "on_truncated": "keep"}},
                    "train": {{"lora": {{"rank": 2, "alpha": 4, "dropout": 0.0}}, "learning_rate": 0.01, "micro_batch": 4, "grad_accum": 1,
                              "epochs": 1, "max_length": 512, "chunk_size": 64, "tensorboard": false}},
                    "eval": {{"problems": ["{Path.Combine(TestData.repositoryRoot, "configs", "tiny-problems.jsonl")}"], "k": 2,
                             "sampling": {{"max_new_tokens": 12, "prompt_budget": 256, "batch_size": 8}}}}}}"""
                for served in [ false; true ] do
                    let name = if served then "served" else "local"
                    let config = studentConfig dir $"{name}.json" json directory (if served then Some $"{{\"url\": \"{url}\"}}" else None)
                    let code, _, err = trd [ "run"; "--config"; config; "--out"; Path.Combine(dir, name) ]
                    Expect.equal code 0 err
                    if served then Expect.stringContains err "is loaded on" "the adapter was loaded on the server"
                for model in [ "base"; "trained" ] do
                    Expect.equal (File.ReadAllText(Path.Combine(dir, "served", "eval", model, "tiny-problems.jsonl")))
                        (File.ReadAllText(Path.Combine(dir, "local", "eval", model, "tiny-problems.jsonl"))) $"{model}: the same samples"
                Expect.notEqual (File.ReadAllText(Path.Combine(dir, "served", "eval", "trained", "tiny-problems.jsonl")))
                    (File.ReadAllText(Path.Combine(dir, "served", "eval", "base", "tiny-problems.jsonl"))) "the adapter changed the samples"
                use http = new Net.Http.HttpClient(BaseAddress = Uri url)
                let models = (Text.Json.Nodes.JsonNode.Parse(http.GetStringAsync("/v1/models").Result)).["data"].AsArray()
                Expect.equal models.Count 2 "the server lists the base and the loaded adapter")
        }

        test "killing the server mid-stage stops the stage naming it; running it again once the server is back loses no batch and duplicates none" {
            let directory = gymStudent ()
            let dir = tempDir ()
            let json = """{"setting": "opsd", "device": "cpu", "student": {"dtype": "float32"},
                "rollout": {"max_new_tokens": 32, "prompt_budget": 256, "batch_size": 1}}"""
            let local = studentConfig dir "local.json" json directory None
            let code, _, err = trd [ "rollout"; "--config"; local; "--out"; Path.Combine(dir, "local") ]
            Expect.equal code 0 err
            let server, line = serve directory 0
            let url = urlIn line
            let port = int (Uri url).Port
            let config = studentConfig dir "served.json" json directory (Some $"{{\"url\": \"{url}\", \"attempts\": 2, \"timeout_s\": 10, \"max_concurrency\": 1}}")
            let run = Path.Combine(dir, "served")
            let rollouts = Path.Combine(run, "corpus", "rollouts.jsonl")
            use stage = start [ "rollout"; "--config"; config; "--out"; run ]
            let err = stage.StandardError.ReadToEndAsync()
            // Kill the server once a few batches are written (one problem each), while the stage is still sampling.
            let lines () = if File.Exists rollouts then File.ReadAllLines(rollouts).Length else 0
            let started = DateTime.UtcNow
            while lines () < 3 && not stage.HasExited && DateTime.UtcNow - started < TimeSpan.FromMinutes 2.0 do Threading.Thread.Sleep 20
            stop server
            Expect.isTrue (stage.WaitForExit(TimeSpan.FromMinutes 2.0)) "the stage ends"
            let written = lines ()
            Expect.equal stage.ExitCode 1 err.Result
            Expect.isLessThan written 16 "the stage stopped before the end"
            Expect.stringContains err.Result $"{url}/v1/completions" "the error names the server"
            Expect.stringContains err.Result "failed 2 times" "after its attempts"
            let again, _ = serve directory port
            try
                let code, _, err = trd [ "rollout"; "--config"; config; "--out"; run ]
                Expect.equal code 0 err
            finally stop again
            Expect.equal (File.ReadAllText rollouts) (File.ReadAllText(Path.Combine(dir, "local", "corpus", "rollouts.jsonl"))) "every record once, the same as an uninterrupted run"
        }

        test "configs/tiny.json with student and teacher served: the same corpus as in-process, and an OPD run with top-K + tail trains from the served teacher's scores and evaluates" {
            let dir = tempDir ()
            let tiny = Trd.Runtime.Pipeline.PipelineConfig.Load tinyConfig
            let models = Path.Combine(dir, "models")
            let student = Trd.Runtime.Pipeline.ModelStore.Materialise(tiny.Student, models, "student")
            let teacher = Trd.Runtime.Pipeline.ModelStore.Materialise(tiny.Teacher, models, "teacher")
            let config (name: string) (servers: (string * string) option) =
                let node = Text.Json.Nodes.JsonNode.Parse(File.ReadAllText tinyConfig, documentOptions = Text.Json.JsonDocumentOptions(CommentHandling = Text.Json.JsonCommentHandling.Skip)).AsObject()
                let problems = Path.Combine(TestData.repositoryRoot, "configs", "tiny-problems.jsonl")
                node["problems"] <- Text.Json.Nodes.JsonValue.Create problems
                node["eval"].["problems"] <- Text.Json.Nodes.JsonArray(Text.Json.Nodes.JsonValue.Create problems)
                node["student"] <- Text.Json.Nodes.JsonObject(dict [ "path", Text.Json.Nodes.JsonValue.Create student :> Text.Json.Nodes.JsonNode ])
                node["teacher"] <- Text.Json.Nodes.JsonObject(dict [ "path", Text.Json.Nodes.JsonValue.Create teacher :> Text.Json.Nodes.JsonNode ])
                node["objective"] <- Text.Json.Nodes.JsonNode.Parse """{"support": "top-k-tail", "top_k": 8}"""
                node["train"].["teacher_top_k"] <- Text.Json.Nodes.JsonValue.Create 8
                node["train"].["tensorboard"] <- Text.Json.Nodes.JsonValue.Create false
                servers |> Option.iter (fun (s, t) ->
                    node["student"].["server"] <- Text.Json.Nodes.JsonNode.Parse $"{{\"url\": \"{s}\"}}"
                    node["teacher"].["server"] <- Text.Json.Nodes.JsonNode.Parse $"{{\"url\": \"{t}\", \"engine\": \"sglang\"}}")
                let path = Path.Combine(dir, name + ".json")
                File.WriteAllText(path, node.ToJsonString())
                path
            let code, _, err = trd [ "run"; "--config"; config "local" None; "--out"; Path.Combine(dir, "local") ]
            Expect.equal code 0 err
            let (s, sLine), (t, tLine) = serve student 0, serve teacher 0
            try
                let code, _, err = trd [ "run"; "--config"; config "served" (Some(urlIn sLine, urlIn tLine)); "--out"; Path.Combine(dir, "served") ]
                Expect.equal code 0 err
                Expect.stringContains err $"from teacher at {urlIn tLine}" "the teacher's scores came from its server"
                Expect.isFalse (err.Contains "teacher-pretrain") "no model was trained"
            finally
                stop s
                stop t
            for file in [ "rollouts.jsonl"; "refinements.jsonl" ] do
                Expect.equal (File.ReadAllText(Path.Combine(dir, "served", "corpus", file))) (File.ReadAllText(Path.Combine(dir, "local", "corpus", file))) $"{file}: the same records"
            for model in [ "base"; "trained" ] do
                Expect.isTrue (File.Exists(Path.Combine(dir, "served", "eval", model, "summary.json"))) $"{model} evaluated"
            let losses (run: string) =
                Trd.Runtime.Logging.MetricsLog.Read(Path.Combine(dir, run, "train", "metrics.jsonl")).Records |> Seq.map (fun r -> r.Values["loss"].Value) |> Seq.toArray
            let l, r = losses "local", losses "served"
            Expect.equal r.Length l.Length "as many steps"
            for i in 0 .. l.Length - 1 do Expect.floatClose { absolute = 1e-5; relative = 1e-5 } r[i] l[i] $"step {i}: the loss from served scores = from in-process scores"
        }

        test "teacher_top_k with a served teacher stores the same scores as in-process and trains to the same losses" {
            withServedStudent (fun directory line ->
                let url = urlIn line
                let dir = tempDir ()
                let json = """{"setting": "opsd", "recipe": "reverse-kl-topk", "objective": {"top_k": 4}, "device": "cpu",
                    "student": {"dtype": "float32"},
                    "rollout": {"max_new_tokens": 16, "prompt_budget": 256, "batch_size": 8},
                    "train": {"lora": {"rank": 2, "alpha": 4, "dropout": 0.0}, "learning_rate": 0.001, "micro_batch": 4, "grad_accum": 1,
                              "epochs": 1, "max_length": 512, "chunk_size": 64, "tensorboard": false, "teacher_top_k": 4}}"""
                let config (served: bool) =
                    studentConfig dir (if served then "served.json" else "local.json") json directory (if served then Some $"{{\"url\": \"{url}\"}}" else None)
                for served in [ false; true ] do
                    let out = Path.Combine(dir, (if served then "served" else "local"))
                    for stage in [ "rollout"; "train" ] do
                        let code, _, err = trd [ stage; "--config"; config served; "--out"; out ]
                        Expect.equal code 0 err
                        if served && stage = "train" then Expect.stringContains err $"from student-" "the scores came from the server"
                // The server scores one sequence per request, the in-process scorer a padded micro-batch: the same numbers up to
                // float32 rounding of the forward pass.
                let store (run: string) = Trd.Runtime.Data.TeacherScoreStore.Open(Path.Combine(dir, run, "train", "teacher-scores"), 4)
                let local, remote = store "local", store "served"
                Expect.equal (Set.ofSeq remote.Ids) (Set.ofSeq local.Ids) "the same trajectories scored"
                for id in local.Ids do
                    let a, b = local.Read id, remote.Read id
                    Expect.sequenceEqual b.Ids a.Ids $"{id}: the same top-4 ids, in order"
                    for i in 0 .. a.LogProbs.Length - 1 do
                        Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (float b.LogProbs[i]) (float a.LogProbs[i]) $"{id}: log-probability {i}"
                    for i in 0 .. a.TargetLogProbs.Length - 1 do
                        Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (float b.TargetLogProbs[i]) (float a.TargetLogProbs[i]) $"{id}: target {i}"
                let losses (run: string) =
                    Trd.Runtime.Logging.MetricsLog.Read(Path.Combine(dir, run, "train", "metrics.jsonl")).Records |> Seq.map (fun r -> r.Values["loss"].Value) |> Seq.toArray
                let l, r = losses "local", losses "served"
                Expect.equal r.Length l.Length "as many steps"
                for i in 0 .. l.Length - 1 do Expect.floatClose { absolute = 1e-5; relative = 1e-5 } r[i] l[i] $"step {i}: the same loss")
        }

        test "a server that does not answer fails the stage naming it after the configured attempts" {
            let dir = tempDir ()
            let directory = Trd.Runtime.Gym.GymModels.Ensure(Trd.Runtime.Gym.GymModels.Student, Trd.Runtime.Gym.GymModels.DefaultCacheRoot())
            let path =
                studentConfig dir "dead.json" """{"setting": "opsd", "device": "cpu", "student": {},
                    "rollout": {"max_new_tokens": 8, "prompt_budget": 256, "batch_size": 3}}""" directory
                    (Some """{"url": "http://127.0.0.1:9", "attempts": 2, "timeout_s": 5}""")
            let code, _, err = trd [ "rollout"; "--config"; path; "--out"; Path.Combine(dir, "run") ]
            Expect.equal code 1 err
            Expect.stringContains err "http://127.0.0.1:9/v1/completions" "names the server"
            Expect.stringContains err "failed 2 times" "after the attempts"
        }

    ]
