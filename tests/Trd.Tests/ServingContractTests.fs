/// The served path's clients against vLLM's and SGLang's response shapes (tests/Trd.Tests/contracts/{vllm,sglang}),
/// replayed through a fake transport: what they send, what they read, and which answers are errors or retried.
module Trd.Tests.ServingContractTests

open System
open System.IO
open System.Net
open System.Net.Http
open System.Text.Json.Nodes
open System.Threading.Tasks
open Expecto
open Trd.Runtime.Generation
open Trd.Runtime.Pipeline
open Trd.Runtime.Serving

let private contract (engine: string) (name: string) =
    File.ReadAllText(Path.Combine(TestData.repositoryRoot, "tests", "Trd.Tests", "contracts", engine, name))

/// Answers each request with what `answer` makes of (its path, its body, how many came before it), and keeps the
/// requests (path, body) in arrival order. Requests may arrive concurrently.
type private Replay(answer: string -> JsonNode -> int -> HttpStatusCode * string) =
    inherit HttpMessageHandler()
    member val Requests = ResizeArray<string * JsonNode>()
    override this.SendAsync(request: HttpRequestMessage, _) =
        let body = JsonNode.Parse(request.Content.ReadAsStringAsync().Result)
        let path = request.RequestUri.AbsolutePath
        let count = lock this.Requests (fun () -> this.Requests.Add((path, body)); this.Requests.Count - 1)
        let status, text = answer path body count
        Task.FromResult(new HttpResponseMessage(status, Content = new StringContent(text)))
    member this.Bodies = lock this.Requests (fun () -> this.Requests |> Seq.map snd |> Seq.toArray)

/// Always the same answer.
let private always status text = new Replay(fun _ _ _ -> status, text)

let private spec (engine: ServingEngine) (attempts: int) (urls: string list) =
    ServerSpec(Engine = engine, Urls = List.toArray urls, Attempts = attempts, TimeoutS = 5, MaxConcurrency = 4)

let private connect engine (replay: Replay) (vocabulary: int) (attempts: int) =
    ServedModel.Connect(spec engine attempts [ "http://engine.test:8000" ], "Qwen/Qwen3-8B", vocabulary, transport = replay)

let private options n = SamplingOptions(Temperature = 0.6, TopP = 0.95, TopK = 0, MaxNewTokens = 8, SamplesPerPrompt = n, PromptSeeds = [| 77L; 900L |], StopTokenIds = [| 151645 |])

let private prompts = [| [| 151644; 872; 198 |]; [| 151644; 872; 198; 11 |] |]

let private ids (node: JsonNode) = node.AsArray() |> Seq.map (fun x -> x.GetValue<int>()) |> List.ofSeq

/// vLLM answers each prompt's request with its recorded completion.
let private vllmByPrompt _ (body: JsonNode) _ =
    HttpStatusCode.OK, contract "vllm" (if body["prompt"].AsArray().Count = 3 then "completions-token-ids.json" else "completions-token-ids-prompt-2.json")

/// Both engines' recorded top-2 answers (vllm/completions-prompt-logprobs.json, sglang/generate-input-logprobs.json)
/// hold the same numbers for context [151644] and trajectory [872; 198; 11], the last token ranked outside the top-2.
let private expectTopTwo (client: IServedModel) =
    let scores = client.ScoreTopK([| ScoringRequest("p", [| 151644 |], [| 872; 198; 11 |]) |], 2)[0]
    Expect.sequenceEqual scores.Ids [| 872; 77091; 198; 25; 40; 1654 |] "ids in rank order"
    Expect.sequenceEqual scores.LogProbs [| -0.25f; -1.5f; -0.0625f; -3.0f; -0.5f; -1.25f |] "their log-probabilities"
    Expect.sequenceEqual scores.TargetLogProbs [| -0.25f; -0.0625f; -4.5f |] "each own token's, the last one outside the top-2"

[<Tests>]
let tests =
    testList "Serving contracts" [
        testCase "vLLM: one request per prompt with its own seed; choices read in prompt order whatever order the answers come in" <| fun () ->
            let replay = new Replay(vllmByPrompt)
            use client = connect ServingEngine.Vllm replay 151936 1
            let generated = client.Generate(prompts, options 2)
            Expect.equal (generated |> Seq.map _.Prompt |> List.ofSeq) [ 0; 0; 1; 1 ] "prompt of each choice"
            Expect.sequenceEqual generated[0].Tokens [| 220; 22; 10; 18; 28; 16; 15; 151645 |] "token ids read as sent"
            Expect.sequenceEqual generated[3].Tokens [| 16; 15; 151645 |] "the second prompt's second sample"
            Expect.equal (generated |> Seq.map _.Truncated |> List.ofSeq) [ false; true; false; false ] "finish_reason length = truncated"
            let sent = replay.Bodies |> Array.sortBy (fun b -> b["prompt"].AsArray().Count)
            Expect.equal sent.Length 2 "one request per prompt"
            Expect.equal (ids sent[1].["prompt"]) [ 151644; 872; 198; 11 ] "the prompt as token ids"
            Expect.equal (sent |> Array.map (fun b -> b["seed"].GetValue<int64>())) [| 77L; 900L |] "each prompt's own seed (vLLM seeds sample j with seed + j)"
            Expect.equal (sent[0].["n"].GetValue<int>()) 2 "n"
            Expect.equal (sent[0].["top_k"].GetValue<int>()) -1 "top-k off is vLLM's −1"
            Expect.isTrue (sent[0].["return_token_ids"].GetValue<bool>()) "asks for token ids"
            Expect.isFalse (sent[0].["skip_special_tokens"].GetValue<bool>()) "keeps special tokens"
            Expect.equal (ids sent[0].["stop_token_ids"]) [ 151645 ] "stop ids"

        testCase "vLLM prompt_logprobs: the ranked top-K per trajectory position and the own token's log-probability, even outside the top-K" <| fun () ->
            let replay = always HttpStatusCode.OK (contract "vllm" "completions-prompt-logprobs.json")
            use client = connect ServingEngine.Vllm replay 151936 1
            expectTopTwo client
            let sent = replay.Bodies[0]
            Expect.equal (sent["prompt_logprobs"].GetValue<int>()) 2 "asks for the top-2"
            Expect.equal (sent["max_tokens"].GetValue<int>()) 1 "generates one token only"
            use again = connect ServingEngine.Vllm (always HttpStatusCode.OK (contract "vllm" "completions-prompt-logprobs.json")) 151936 1
            Expect.stringContains (Generators.throwsMessage<ServerException> (fun () -> again.ScoreTopK([| ScoringRequest("p", [| 151644 |], [| 872; 198; 11 |]) |], 3) |> ignore))
                "--max-logprobs ≥ 3" "fewer ranked entries than K is an error saying how to start the server"

        testCase "vLLM: a 4xx in either error shape is an error with the server's message, not retried" <| fun () ->
            for file, words in [ "error-flat.json", "maximum context length"; "error-nested.json", "does not exist" ] do
                let replay = always HttpStatusCode.BadRequest (contract "vllm" file)
                use client = connect ServingEngine.Vllm replay 151936 3
                let message = Generators.throwsMessage<ServerException> (fun () -> client.Generate(prompts[..0], options 2) |> ignore)
                Expect.stringContains message words $"{file}: the server's message"
                Expect.stringContains message "http://engine.test:8000/v1/completions" $"{file}: the request named"
                Expect.equal replay.Requests.Count 1 $"{file}: not retried"

        testCase "vLLM: a 503 is retried and the next answer used; answers of the wrong shape are errors naming the request" <| fun () ->
            let replay = new Replay(fun p b i -> if i = 0 then HttpStatusCode.ServiceUnavailable, contract "vllm" "error-flat.json" else vllmByPrompt p b i)
            use client = connect ServingEngine.Vllm replay 151936 2
            Expect.equal (client.Generate(prompts[..0], options 2)).Count 2 "the retried answer"
            Expect.equal replay.Requests.Count 2 "two requests"
            use wrongCount = connect ServingEngine.Vllm (new Replay(vllmByPrompt)) 151936 1
            Expect.stringContains (Generators.throwsMessage<ServerException> (fun () -> wrongCount.Generate(prompts[..0], options 1) |> ignore))
                "2 choices for n = 1" "a wrong number of choices"
            use smallVocabulary = connect ServingEngine.Vllm (new Replay(vllmByPrompt)) 1000 1
            Expect.stringContains (Generators.throwsMessage<ServerException> (fun () -> smallVocabulary.Generate(prompts[..0], options 2) |> ignore))
                "outside the vocabulary [0, 1000)" "an id outside the vocabulary"
            use notJson = connect ServingEngine.Vllm (always HttpStatusCode.OK "<html>proxy</html>") 151936 1
            Expect.stringContains (Generators.throwsMessage<ServerException> (fun () -> notJson.Generate(prompts[..0], options 2) |> ignore))
                "not JSON" "malformed JSON"

        testCase "vLLM: an adapter is loaded on every replica, 'already loaded' counts as loaded, and requests then name it as the model" <| fun () ->
            let replay = new Replay(fun path body i ->
                if path = "/v1/load_lora_adapter" then (if i = 0 then HttpStatusCode.OK, contract "vllm" "load-lora-adapter.txt" else HttpStatusCode.BadRequest, contract "vllm" "error-lora-loaded.json")
                else vllmByPrompt path body i)
            use client = ServedModel.Connect(spec ServingEngine.Vllm 1 [ "http://a.test:8000"; "http://b.test:8000" ], "Qwen/Qwen3-8B", 151936, transport = replay)
            let adapted = client.WithAdapter("trd-3f9a0c2b7e1d", "/runs/r/train/checkpoints/step-8/adapter")
            let loads = replay.Requests |> Seq.filter (fun (p, _) -> p = "/v1/load_lora_adapter") |> Seq.map snd |> Seq.toArray
            Expect.equal loads.Length 2 "one load per replica"
            Expect.equal (loads[0].["lora_path"].GetValue<string>()) "/runs/r/train/checkpoints/step-8/adapter" "the adapter's path"
            adapted.Generate(prompts, options 2) |> ignore
            let generations = replay.Bodies |> Array.filter (fun b -> b["prompt"] <> null)
            Expect.isTrue (generations |> Array.forall (fun b -> b["model"].GetValue<string>() = "trd-3f9a0c2b7e1d")) "generation names the adapter"

        testCase "requests spread over the replicas in turn, at most max_concurrency in flight, and a retry goes to the next replica" <| fun () ->
            let hosts = ResizeArray<string>()
            let mutable inFlight = 0
            let mutable most = 0
            let replay =
                { new HttpMessageHandler() with
                    member _.SendAsync(request, _) =
                        task {
                            lock hosts (fun () -> hosts.Add request.RequestUri.Host; inFlight <- inFlight + 1; most <- max most inFlight)
                            do! Task.Delay 20
                            lock hosts (fun () -> inFlight <- inFlight - 1)
                            let body = JsonNode.Parse(request.Content.ReadAsStringAsync().Result)
                            return new HttpResponseMessage(HttpStatusCode.OK, Content = new StringContent(snd (vllmByPrompt "" body 0)))
                        } }
            let many = Array.init 12 (fun i -> prompts[i % 2])
            use client = ServedModel.Connect(ServerSpec(Urls = [| "http://a.test:1"; "http://b.test:1"; "http://c.test:1" |], MaxConcurrency = 3), "m", 151936, transport = replay)
            let generated = client.Generate(many, SamplingOptions(MaxNewTokens = 8, SamplesPerPrompt = 2, PromptSeeds = Array.init 12 int64, StopTokenIds = [| 151645 |]))
            Expect.equal generated.Count 24 "every prompt's samples"
            Expect.equal (generated |> Seq.map _.Prompt |> Seq.distinct |> List.ofSeq) [ 0 .. 11 ] "in prompt order"
            Expect.equal (hosts |> Seq.countBy id |> Seq.map snd |> List.ofSeq) [ 4; 4; 4 ] "four requests per replica"
            Expect.isLessThanOrEqual most 3 "never more than max_concurrency in flight"
            let retried = new Replay(fun _ b i -> if i = 0 then HttpStatusCode.BadGateway, "bad gateway" else vllmByPrompt "" b i)
            let seen = ResizeArray<string>()
            let recording =
                { new DelegatingHandler(retried) with
                    member _.SendAsync(request, cancel) = seen.Add request.RequestUri.Host; base.SendAsync(request, cancel) }
            use twice = ServedModel.Connect(ServerSpec(Urls = [| "http://a.test:1"; "http://b.test:1" |], Attempts = 2), "m", 151936, transport = recording)
            twice.Generate(prompts[..0], options 2) |> ignore
            Expect.equal (List.ofSeq seen) [ "a.test"; "b.test" ] "the retry went to the other replica"

        testCase "a server that keeps failing: the stage's error names the server, the attempts and the last error" <| fun () ->
            let replay = always HttpStatusCode.InternalServerError """{"object": "error", "message": "CUDA out of memory", "code": 500}"""
            use client = ServedModel.Connect(ServerSpec(Urls = [| "http://engine.test:8000" |], Attempts = 2, TimeoutS = 5), "m", 151936, transport = replay)
            let message = Generators.throwsMessage<ServerException> (fun () -> client.Generate(prompts[..0], options 1) |> ignore)
            Expect.stringContains message "http://engine.test:8000/v1/completions" "the server"
            Expect.stringContains message "failed 2 times" "the attempts"
            Expect.stringContains message "CUDA out of memory" "the last error"

        testCase "SGLang: one request per sample seeded prompt seed + j; output_ids read, a matched stop token appended, length = truncated" <| fun () ->
            let replay = new Replay(fun _ body _ ->
                HttpStatusCode.OK, contract "sglang" (if body["sampling_params"].["sampling_seed"].GetValue<int64>() % 2L = 0L then "generate-length.json" else "generate-stop.json"))
            use client = connect ServingEngine.Sglang replay 151936 1
            let generated = client.Generate(prompts, options 2)
            Expect.equal (generated |> Seq.map _.Prompt |> List.ofSeq) [ 0; 0; 1; 1 ] "prompt-major"
            // Seeds 77, 78 for prompt 0 and 900, 901 for prompt 1: odd seeds were answered "stop", even ones "length".
            Expect.equal (generated |> Seq.map _.Truncated |> List.ofSeq) [ false; true; true; false ] "finish_reason type length = truncated"
            Expect.sequenceEqual generated[0].Tokens [| 220; 22; 10; 18; 28; 16; 15; 151645 |] "the matched stop token appended"
            Expect.sequenceEqual generated[1].Tokens [| 220; 22; 10; 18; 28; 15 |] "a cut sample as sent"
            let sent = replay.Bodies
            Expect.equal sent.Length 4 "one request per sample"
            Expect.equal (sent |> Array.map (fun b -> b["sampling_params"].["sampling_seed"].GetValue<int64>()) |> Array.sort) [| 77L; 78L; 900L; 901L |] "sample j seeded prompt seed + j"
            let p = sent[0].["sampling_params"]
            Expect.equal (p["max_new_tokens"].GetValue<int>()) 8 "max_new_tokens"
            Expect.equal (p["top_k"].GetValue<int>()) -1 "top-k off is −1"
            Expect.isFalse (p["skip_special_tokens"].GetValue<bool>()) "keeps special tokens"
            Expect.isTrue (sent |> Array.forall (fun b -> b["input_ids"].AsArray().Count >= 3)) "the prompt as input_ids"

        testCase "SGLang input_top_logprobs: the top-K per trajectory position and the own token's log-probability from input_token_logprobs" <| fun () ->
            let replay = always HttpStatusCode.OK (contract "sglang" "generate-input-logprobs.json")
            use client = connect ServingEngine.Sglang replay 151936 1
            expectTopTwo client
            let sent = replay.Bodies[0]
            Expect.isTrue (sent["return_logprob"].GetValue<bool>()) "return_logprob"
            Expect.equal (sent["logprob_start_len"].GetValue<int>()) 0 "from the first position"
            Expect.equal (sent["top_logprobs_num"].GetValue<int>()) 2 "top_logprobs_num"
            use wrongToken = connect ServingEngine.Sglang (always HttpStatusCode.OK (contract "sglang" "generate-input-logprobs.json")) 151936 1
            Expect.stringContains (Generators.throwsMessage<ServerException> (fun () -> wrongToken.ScoreTopK([| ScoringRequest("p", [| 151644 |], [| 872; 198; 12 |]) |], 2) |> ignore))
                "not the trajectory's 12" "a score of another token is an error"

        testCase "SGLang: a 400 is an error with the server's message; an adapter is loaded by name and named in lora_path" <| fun () ->
            let replay = always HttpStatusCode.BadRequest (contract "sglang" "error.json")
            use client = connect ServingEngine.Sglang replay 151936 3
            let message = Generators.throwsMessage<ServerException> (fun () -> client.Generate(prompts[..0], options 1) |> ignore)
            Expect.stringContains message "longer than the model's context length" "the server's message"
            Expect.stringContains message "http://engine.test:8000/generate" "the request named"
            Expect.equal replay.Requests.Count 1 "not retried"
            let loads = new Replay(fun path _ _ -> if path = "/load_lora_adapter" then HttpStatusCode.OK, """{"success": true}""" else HttpStatusCode.OK, contract "sglang" "generate-stop.json")
            use base' = connect ServingEngine.Sglang loads 151936 1
            (base'.WithAdapter("trd-1", "/runs/a")).Generate(prompts[..0], options 1) |> ignore
            Expect.equal (loads.Bodies[0].["lora_name"].GetValue<string>()) "trd-1" "loaded by name"
            Expect.equal (loads.Bodies[1].["lora_path"].GetValue<string>()) "trd-1" "generation names the adapter in lora_path"
    
        testCase "the server object of a config: one URL or a list, every bad value named before any work" <| fun () ->
            let config (server: string) =
                $$$"""{"problems": "p.jsonl", "student": {"path": "s", "server": { {{{server}}} }}, "teacher": {"path": "t"}}"""
            let parsed = PipelineConfig.Parse(config """ "engine": "sglang", "url": ["http://a:1", "http://b:2"], "max_concurrency": 8 """).Validated("c.json")
            Expect.equal (List.ofSeq parsed.Student.Server.Urls) [ "http://a:1"; "http://b:2" ] "a list of URLs"
            Expect.equal parsed.Student.Server.Engine ServingEngine.Sglang "sglang"
            Expect.equal parsed.Student.Server.MaxConcurrency 8 "max_concurrency"
            Expect.equal (List.ofSeq (PipelineConfig.Parse(config """ "url": "http://a:1" """).Validated("c.json").Student.Server.Urls)) [ "http://a:1" ] "one URL"
            for server, words in [ """ "url": "ftp://a" """, "student.server.url: expected an http(s) URL, got 'ftp://a'"
                                   """ "url": ["http://a:1", "http://a:1"] """, "student.server.url: a URL is listed twice"
                                   """ "url": "http://a:1", "max_concurrency": 0 """, "student.server.max_concurrency: must be ≥ 1, got 0"
                                   """ "url": "http://a:1", "engine": "tgi" """, "tgi"
                                   """ "engine": "vllm" """, "student.server.url: required" ] do
                let message = Generators.throwsMessage<ConfigException> (fun () -> PipelineConfig.Parse(config server, "c.json").Validated("c.json") |> ignore)
                Expect.stringContains message words $"{server}: named"
            Expect.stringContains (Generators.throwsMessage<ConfigException> (fun () -> PipelineConfig.Parse(config """ "url": 5 """, "c.json") |> ignore))
                "expected a URL or a list of URLs" "a URL of the wrong type"
    ]
