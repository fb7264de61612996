/// The served path's client against vLLM's response shapes (tests/Trd.Tests/contracts/vllm), replayed through a fake
/// transport: what it sends, what it reads, and which answers are errors or retried.
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

let private contract (name: string) = File.ReadAllText(Path.Combine(TestData.repositoryRoot, "tests", "Trd.Tests", "contracts", "vllm", name))

/// Answers each request with the next (status, body) and keeps the request bodies.
type private Replay(answers: (HttpStatusCode * string) list) =
    inherit HttpMessageHandler()
    let mutable remaining = answers
    member val Requests = ResizeArray<JsonNode>()
    override this.SendAsync(request: HttpRequestMessage, _) =
        this.Requests.Add(JsonNode.Parse(request.Content.ReadAsStringAsync().Result))
        match remaining with
        | (status, body) :: rest ->
            remaining <- rest
            Task.FromResult(new HttpResponseMessage(status, Content = new StringContent(body)))
        | [] -> failwith "no more answers"

let private client (replay: Replay) (vocabulary: int) (attempts: int) =
    new VllmGenerator(ServerSpec(Url = "http://vllm.test:8000", Attempts = attempts, TimeoutS = 5), "Qwen/Qwen3-8B", vocabulary, transport = replay)

let private options n = SamplingOptions(Temperature = 0.6, TopP = 0.95, TopK = 0, MaxNewTokens = 8, SamplesPerPrompt = n, Seed = 77L, StopTokenIds = [| 151645 |])

let private prompts = [| [| 151644; 872; 198 |]; [| 151644; 872; 198; 11 |] |]

[<Tests>]
let tests =
    testList "Serving contracts" [
        testCase "a vLLM completion with token ids: prompt-major choices, finish reasons, and the request it answers" <| fun () ->
            let replay = new Replay([ HttpStatusCode.OK, contract "completions-token-ids.json" ])
            use generator = client replay 151936 1
            let generated = generator.Generate(prompts, options 2)
            Expect.equal (generated |> Seq.map _.Prompt |> List.ofSeq) [ 0; 0; 1; 1 ] "prompt of each choice"
            Expect.sequenceEqual generated[0].Tokens [| 220; 22; 10; 18; 28; 16; 15; 151645 |] "token ids read as sent"
            Expect.equal (generated |> Seq.map _.Truncated |> List.ofSeq) [ false; true; false; false ] "finish_reason length = truncated"
            let sent = replay.Requests[0]
            Expect.equal (sent["prompt"].AsArray().Count) 2 "both prompts in one request"
            Expect.equal (sent["prompt"].[1].AsArray() |> Seq.map (fun x -> x.GetValue<int>()) |> List.ofSeq) [ 151644; 872; 198; 11 ] "prompts as token ids"
            Expect.equal (sent["n"].GetValue<int>()) 2 "n"
            Expect.equal (sent["seed"].GetValue<int64>()) 77L "the batch's seed"
            Expect.equal (sent["top_k"].GetValue<int>()) -1 "top-k off is vLLM's −1"
            Expect.isTrue (sent["return_token_ids"].GetValue<bool>()) "asks for token ids"
            Expect.isFalse (sent["skip_special_tokens"].GetValue<bool>()) "keeps special tokens"
            Expect.equal (sent["stop_token_ids"].AsArray() |> Seq.map (fun x -> x.GetValue<int>()) |> List.ofSeq) [ 151645 ] "stop ids"

        testCase "prompt_logprobs: the ranked top-K per trajectory position and the own token's log-probability, even outside the top-K" <| fun () ->
            let replay = new Replay([ HttpStatusCode.OK, contract "completions-prompt-logprobs.json" ])
            use generator = client replay 151936 1
            let scores = generator.ScoreTopK("p", [| 151644 |], [| 872; 198; 11 |], 2)
            Expect.sequenceEqual scores.Ids [| 872; 77091; 198; 25; 40; 1654 |] "ids in rank order"
            Expect.sequenceEqual scores.LogProbs [| -0.25f; -1.5f; -0.0625f; -3.0f; -0.5f; -1.25f |] "their log-probabilities"
            Expect.sequenceEqual scores.TargetLogProbs [| -0.25f; -0.0625f; -4.5f |] "each own token's, the last one ranked 7th"
            let sent = replay.Requests[0]
            Expect.equal (sent["prompt_logprobs"].GetValue<int>()) 2 "asks for the top-2"
            Expect.equal (sent["max_tokens"].GetValue<int>()) 1 "generates one token only"
            Expect.throwsT<ServerException> (fun () ->
                use again = client (new Replay([ HttpStatusCode.OK, contract "completions-prompt-logprobs.json" ])) 151936 1
                again.ScoreTopK("p", [| 151644 |], [| 872; 198; 11 |], 3) |> ignore) "fewer ranked entries than K is an error"

        testCase "a 4xx in either of vLLM's error shapes is an error with the server's message, not retried" <| fun () ->
            for file, words in [ "error-flat.json", "maximum context length"; "error-nested.json", "does not exist" ] do
                let replay = new Replay([ HttpStatusCode.BadRequest, contract file ])
                use generator = client replay 151936 3
                let message = Generators.throwsMessage<ServerException> (fun () -> generator.Generate(prompts, options 2) |> ignore)
                Expect.stringContains message words $"{file}: the server's message"
                Expect.stringContains message "http://vllm.test:8000/v1/completions" $"{file}: the request named"
                Expect.equal replay.Requests.Count 1 $"{file}: not retried"

        testCase "a 503 is retried and the next answer used; answers of the wrong shape are errors naming the request" <| fun () ->
            let replay = new Replay([ HttpStatusCode.ServiceUnavailable, contract "error-flat.json"; HttpStatusCode.OK, contract "completions-token-ids.json" ])
            use generator = client replay 151936 2
            Expect.equal (generator.Generate(prompts, options 2)).Count 4 "the retried answer"
            Expect.equal replay.Requests.Count 2 "two requests"
            use wrongCount = client (new Replay([ HttpStatusCode.OK, contract "completions-token-ids.json" ])) 151936 1
            Expect.stringContains (Generators.throwsMessage<ServerException> (fun () -> wrongCount.Generate(prompts, options 1) |> ignore))
                "4 choices for 2 prompts × n = 1" "a wrong number of choices"
            use smallVocabulary = client (new Replay([ HttpStatusCode.OK, contract "completions-token-ids.json" ])) 1000 1
            Expect.stringContains (Generators.throwsMessage<ServerException> (fun () -> smallVocabulary.Generate(prompts, options 2) |> ignore))
                "outside the vocabulary [0, 1000)" "an id outside the vocabulary"
    ]
