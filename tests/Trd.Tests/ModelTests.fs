/// The Qwen3 decoder against a float64 reference written out op by op (Hugging Face's modeling_qwen3.py),
/// the KV cache against recomputation, sampling determinism, teacher forcing and LoRA.
module Trd.Tests.ModelTests

open System
open System.Collections.Generic
open Expecto
open TorchSharp
open Trd.Runtime.Checkpoints
open Trd.Runtime.Models
open Trd.Runtime.Generation
open Trd.Runtime.Scoring
open Trd.Runtime.Objectives
open Trd.Runtime.Lora

type private T = torch.Tensor

/// vocab 97, hidden 32, 2 layers, 4 query heads over 2 key/value heads, head_dim 8 (≠ hidden/heads), intermediate 48.
let tinyConfig (tied: bool) =
    Qwen3Config.Tiny(vocabSize = 97, hiddenSize = 32, numHiddenLayers = 2, numAttentionHeads = 4, numKeyValueHeads = 2, headDim = 12,
                     intermediateSize = 48, tieWordEmbeddings = tied)

let tinyModel (tied: bool) (dtype: torch.ScalarType) (seed: int64) =
    let model = new Qwen3ForCausalLM(tinyConfig tied, torch.CPU, dtype)
    model.InitialiseRandom(seed, 0.2)
    model.eval()
    model

/// Hugging Face's forward, written out op by op on the state dict in float64: repeat_kv attention with an
/// explicit causal softmax, rotate-half RoPE, float32-style RMSNorm (here float64 throughout).
let referenceLogits (model: Qwen3ForCausalLM) (ids: int[]) : float[][] =
    use _ = torch.no_grad()
    let c = model.Config
    let p = Dictionary<string, T>()
    for struct (name, param) in model.named_parameters() do p[name] <- param.detach().to_type(torch.float64)
    let t = int64 ids.Length
    let rms (x: T) (w: T) = x * ((x * x).mean([| -1L |], true) + c.RmsNormEps).rsqrt() * w
    let linear (x: T) (name: string) = x.matmul(p[name + ".weight"].t())
    let d = int64 c.HeadDim
    let invFreq = 1.0 / torch.pow(c.RopeTheta, torch.arange(0L, d, 2L, dtype = torch.float64) / float d)
    let freqs = torch.arange(t, dtype = torch.float64).unsqueeze(1) * invFreq.unsqueeze(0)    // [T, D/2]
    let emb = torch.cat([| freqs; freqs |], -1L)
    let cos, sin = emb.cos().unsqueeze(1), emb.sin().unsqueeze(1)                               // [T, 1, D]
    let rotate (x: T) = torch.cat([| -x.narrow(-1L, d / 2L, d / 2L); x.narrow(-1L, 0L, d / 2L) |], -1L)
    let rope (x: T) = x * cos + rotate x * sin
    let mutable x = p["model.embed_tokens.weight"].index_select(0L, torch.tensor(ids |> Array.map int64))   // [T, H]
    let heads, kv = int64 c.NumAttentionHeads, int64 c.NumKeyValueHeads
    let causal = torch.ones(t, t, dtype = torch.bool).triu(1L)                                  // true above the diagonal
    for layer in 0 .. c.NumHiddenLayers - 1 do
        let pre = $"model.layers.{layer}."
        let h = rms x p[pre + "input_layernorm.weight"]
        let q = rms ((linear h (pre + "self_attn.q_proj")).view(t, heads, d)) p[pre + "self_attn.q_norm.weight"] |> rope
        let k = rms ((linear h (pre + "self_attn.k_proj")).view(t, kv, d)) p[pre + "self_attn.k_norm.weight"] |> rope
        let v = (linear h (pre + "self_attn.v_proj")).view(t, kv, d)
        let repeat (z: T) = z.repeat_interleave(heads / kv, dim = 1L)                            // [T, Q, D]
        let scores = q.permute(1L, 0L, 2L).matmul(repeat(k).permute(1L, 2L, 0L)) / sqrt (float d) // [Q, T, T]
        let weights = scores.masked_fill(causal, Double.NegativeInfinity).softmax(-1L)
        let attended = weights.matmul(repeat(v).permute(1L, 0L, 2L)).permute(1L, 0L, 2L).reshape(t, heads * d)
        x <- x + linear attended (pre + "self_attn.o_proj")
        let h2 = rms x p[pre + "post_attention_layernorm.weight"]
        let gate = linear h2 (pre + "mlp.gate_proj")
        x <- x + (torch.nn.functional.silu(gate) * linear h2 (pre + "mlp.up_proj")).matmul(p[pre + "mlp.down_proj.weight"].t())
    let hidden = rms x p["model.norm.weight"]
    let out = if c.TieWordEmbeddings then p["model.embed_tokens.weight"] else p["lm_head.weight"]
    let logits = hidden.matmul(out.t())
    logits.data<float>().ToArray() |> Array.chunkBySize c.VocabSize

let private logitsOf (model: Qwen3ForCausalLM) (ids: int[]) : float[][] =
    use _ = torch.no_grad()
    use x = torch.tensor(ids |> Array.map int64).view(1L, -1L)
    use logits = model.Forward(x)
    logits[0L].to_type(torch.float64).data<float>().ToArray() |> Array.chunkBySize model.Config.VocabSize

let private maxAbsDiff (a: float[][]) (b: float[][]) =
    Array.map2 (Array.map2 (fun x y -> abs (x - y))) a b |> Array.collect id |> Array.max

let private prompt (rng: Random) (length: int) = Array.init length (fun _ -> rng.Next(1, 97))

[<Tests>]
let tests =
    testSequenced <| testList "Qwen3 model" [
        testCase "parameter names are Hugging Face's, with lm_head only when untied" <| fun () ->
            use untied = tinyModel false torch.float32 1L
            let names = untied.named_parameters() |> Seq.map (fun struct (n, _) -> n) |> Set.ofSeq
            for expected in [ "model.embed_tokens.weight"; "model.layers.0.self_attn.q_proj.weight"; "model.layers.1.self_attn.k_norm.weight"
                              "model.layers.0.self_attn.q_norm.weight"; "model.layers.1.mlp.down_proj.weight"; "model.layers.0.input_layernorm.weight"
                              "model.layers.0.post_attention_layernorm.weight"; "model.norm.weight"; "lm_head.weight" ] do
                Expect.contains names expected $"has {expected}"
            Expect.equal names.Count (1 + 2 * 11 + 1 + 1) "embedding, 11 per layer, final norm, lm_head"
            use tied = tinyModel true torch.float32 1L
            let tiedNames = tied.named_parameters() |> Seq.map (fun struct (n, _) -> n) |> Set.ofSeq
            Expect.isFalse (tiedNames.Contains "lm_head.weight") "a tied model has no lm_head.weight"

        for tied in [ false; true ] do
            testCase $"float64 forward equals the op-by-op reference (tied = {tied})" <| fun () ->
                use model = tinyModel tied torch.float64 2L
                let ids = prompt (Random 3) 11
                let diff = maxAbsDiff (logitsOf model ids) (referenceLogits model ids)
                Expect.isLessThan diff 1e-10 "max |Δ logit|"

        testCase "float32 forward equals the float64 reference to 1e-4 relative" <| fun () ->
            use model64 = tinyModel false torch.float64 4L
            use model32 = tinyModel false torch.float32 4L
            let ids = prompt (Random 5) 9
            let reference = referenceLogits model64 ids
            let scale = reference |> Array.collect id |> Array.map abs |> Array.max
            Expect.isLessThan (maxAbsDiff (logitsOf model32 ids) reference / scale) 1e-4 "relative"

        testCase "the forward pass is causal: later tokens do not change earlier logits" <| fun () ->
            use model = tinyModel false torch.float64 6L
            let a = prompt (Random 7) 10
            let b = Array.append a[.. 5] (prompt (Random 8) 4)
            let la, lb = logitsOf model a, logitsOf model b
            Expect.isLessThan (maxAbsDiff la[.. 5] lb[.. 5]) 1e-12 "first six positions"

        testCase "left padding with an attention mask gives each row's unpadded logits; without a mask, offset positions are refused" <| fun () ->
            use model = tinyModel false torch.float64 6L
            use _ = torch.no_grad()
            let a, b = prompt (Random 21) 7, prompt (Random 22) 4
            let padded = Array.append (Array.create 3 0) b                                          // b left-padded to 7
            use ids = torch.tensor(Array.append a padded |> Array.map int64).view(2L, 7L)
            use mask = torch.tensor(Array.append (Array.create 7 1L) (Array.append (Array.create 3 0L) (Array.create 4 1L))).view(2L, 7L)
            use logits = model.Forward(ids, attentionMask = mask)                                  // [2, 7, V]
            let row (r: int64) (from: int64) = logits[r].narrow(0L, from, 7L - from).data<float>().ToArray() |> Array.chunkBySize 97
            Expect.isLessThan (maxAbsDiff (row 0L 0L) (logitsOf model a)) 1e-12 "the unpadded row"
            Expect.isLessThan (maxAbsDiff (row 1L 3L) (logitsOf model b)) 1e-12 "the left-padded row's real tokens equal b alone"
            Expect.isFalse (logits.isnan().any().item<bool>()) "padding queries have defined outputs"
            use offset = torch.tensor(Array.init 7 (fun i -> int64 (i + 3))).view(1L, 7L)
            use one = ids.narrow(0L, 0L, 1L)
            let e = Expect.throwsC (fun () -> model.Forward(one, offset) |> ignore) id
            Expect.stringContains e.Message "attentionMask" "says what to do"

        testCase "RoPE's float32 inverse frequencies are transformers' (float32 ops), the float64 ones the exact maths" <| fun () ->
            use rotary = new Rotary(128L, 1_000_000.0)
            use f32 = rotary.InverseFrequencies(torch.float32)
            use f64 = rotary.InverseFrequencies(torch.float64)
            Expect.equal f32.dtype torch.float32 "float32"
            // transformers: 1.0 / (base ** (torch.arange(0, 128, 2, dtype=torch.int64).float() / 128)), every op in float32.
            let expected =
                Array.init 64 (fun i -> 1.0f / MathF.Pow(1_000_000.0f, float32 (2 * i) / 128.0f))
            let ours = f32.data<float32>().ToArray()
            let exact = f64.data<float>().ToArray()
            for i in 0 .. 63 do
                Expect.isLessThanOrEqual (abs (float ours[i] - exact[i]) / exact[i]) 1.2e-6 $"θ_{i} within float32 rounding of the exact value"
                Expect.isLessThanOrEqual (abs (ours[i] - expected[i]) / expected[i]) 2.4e-7f $"θ_{i} matches the float32 formula to an ulp"

        testCase "the decode step's row-dot output product equals the float64 product to float32 rounding, the same bits on 1 and 2 threads" <| fun () ->
            use _ = torch.no_grad()
            for vocabulary, width in [ 1031, 37; 4096, 512; 97, 12 ] do
                let rng = Random(vocabulary)
                use weight = torch.tensor(Array.init (vocabulary * width) (fun _ -> float32 (rng.NextDouble() * 2.0 - 1.0))).view(int64 vocabulary, int64 width)
                for rows in 1 .. RowDotProduct.MaxRows do
                    use hidden = torch.tensor(Array.init (rows * width) (fun _ -> float32 (rng.NextDouble() * 4.0 - 2.0))).view(int64 rows, int64 width)
                    Expect.isTrue (RowDotProduct.Applies(hidden, weight)) "applies"
                    use fast = RowDotProduct.Compute(hidden, weight)
                    use exact = hidden.to_type(torch.float64).matmul(weight.to_type(torch.float64).t())
                    use scale = hidden.to_type(torch.float64).abs().matmul(weight.to_type(torch.float64).abs().t())   // Σ|x||w|: the rounding's scale
                    let err = ((fast.to_type(torch.float64) - exact).abs() / scale).max().item<float>()
                    Expect.isLessThan err (float width * 1.2e-7) $"V {vocabulary}, H {width}, rows {rows}: relative to Σ|x·w|"
                    let threads = torch.get_num_threads()
                    torch.set_num_threads 1
                    use one = RowDotProduct.Compute(hidden, weight)
                    torch.set_num_threads threads
                    Expect.equal (one.data<float32>().ToArray()) (fast.data<float32>().ToArray()) "the same bits on one thread"
            use hidden = torch.randn(5L, 12L)
            use weight = torch.randn(97L, 12L)
            Expect.isFalse (RowDotProduct.Applies(hidden, weight)) "five rows: libtorch's product"
            Expect.isFalse (RowDotProduct.Applies(hidden.to_type(torch.float64), weight.to_type(torch.float64))) "float64: libtorch's product"

        testCase "the model's logits take the row-dot path only without autograd; with it, gradients flow through libtorch's product" <| fun () ->
            use model = tinyModel true torch.float32 12L
            use hidden = torch.randn(1L, 32L)
            use withGrad = model.Logits(hidden)
            Expect.isTrue withGrad.requires_grad "a graph through the (tied) output weight"
            use inference = (use _ = torch.no_grad() in model.Logits(hidden))
            Expect.isFalse inference.requires_grad "no graph"
            let d = (withGrad.detach() - inference).abs().max().item<float32>()
            Expect.isLessThan d 1e-5f "the two paths agree to float32 rounding"

        testCase "prefill and decode through the KV cache give the full forward's logits" <| fun () ->
            use model = tinyModel false torch.float64 9L
            let ids = prompt (Random 10) 12
            let full = logitsOf model ids
            use _ = torch.no_grad()
            use cache = new KvCache(model.Config, 1L, 16L, torch.CPU, torch.float64)
            let step (start: int) (count: int) =
                use scope = torch.NewDisposeScope()
                let x = torch.tensor(ids[start .. start + count - 1] |> Array.map int64).view(1L, -1L)
                let positions = torch.arange(int64 start, int64 (start + count)).view(1L, -1L)
                cache.BeginStep(positions)
                let logits = model.Forward(x, positions, cache)
                logits[0L].to_type(torch.float64).data<float>().ToArray() |> Array.chunkBySize 97
            let cached = Array.concat [ step 0 7; step 7 1; step 8 1; step 9 3 ]
            Expect.isLessThan (maxAbsDiff cached full) 1e-10 "prefill 7, decode 1, 1, then 3 at once"

        testCase "greedy decoding with the cache equals greedy decoding without it, token for token (batched, ragged prompts)" <| fun () ->
            use model = tinyModel false torch.float32 11L
            let rng = Random 12
            let prompts = [| prompt rng 3; prompt rng 9; prompt rng 1; prompt rng 6 |]
            let options = SamplingOptions(Temperature = 0.0, MaxNewTokens = 24)
            let samples = Sampler.Generate(model, prompts, options)
            for i in 0 .. prompts.Length - 1 do
                let reference = Sampler.GreedyWithoutCache(model, prompts[i], 24)
                Expect.sequenceEqual samples[i].Tokens reference $"prompt {i}"
                Expect.isTrue samples[i].Truncated "no stop token given: truncated at the budget"

        testCase "the same seed gives the same samples; several samples per prompt share one prefill" <| fun () ->
            use model = tinyModel false torch.float32 13L
            let prompts = [| prompt (Random 14) 5; prompt (Random 15) 8 |]
            let options = SamplingOptions(Temperature = 1.0, TopP = 0.9, TopK = 20, MaxNewTokens = 12, SamplesPerPrompt = 3, Seed = 42L)
            let a, b = Sampler.Generate(model, prompts, options), Sampler.Generate(model, prompts, options)
            Expect.equal a.Count 6 "2 prompts × 3 samples"
            for i in 0 .. 5 do
                Expect.sequenceEqual a[i].Tokens b[i].Tokens $"sample {i}"
                Expect.equal a[i].Prompt (i / 3) "prompt index"
            let c = Sampler.Generate(model, prompts, SamplingOptions(Temperature = 1.0, TopP = 0.9, TopK = 20, MaxNewTokens = 12, SamplesPerPrompt = 3, Seed = 43L))
            Expect.isFalse (Seq.forall2 (fun (x: Sample) (y: Sample) -> x.Tokens = y.Tokens) a c) "another seed gives other samples"

        testCase "top-k = 1 sampling is greedy; sampled log-probabilities are the model's at T = 1" <| fun () ->
            use model = tinyModel false torch.float64 16L
            let p = prompt (Random 17) 6
            let sampled = Sampler.Generate(model, [| p |], SamplingOptions(Temperature = 0.7, TopK = 1, MaxNewTokens = 8, Seed = 1L))
            Expect.sequenceEqual sampled[0].Tokens (Sampler.GreedyWithoutCache(model, p, 8)) "top-1 = greedy"
            let full = logitsOf model (Array.append p sampled[0].Tokens)
            for j in 0 .. 7 do
                let lp = Trd.Core.Numerics.logSoftmax full[p.Length - 1 + j]
                Expect.floatClose Accuracy.medium (float sampled[0].LogProbs[j]) lp[sampled[0].Tokens[j]] $"log π of token {j}"

        testCase "sampling stops at a stop token and reports it as not truncated" <| fun () ->
            use model = tinyModel false torch.float32 18L
            let p = prompt (Random 19) 4
            let greedy = Sampler.GreedyWithoutCache(model, p, 10)
            let stop = greedy[3]
            let s = Sampler.Generate(model, [| p |], SamplingOptions(Temperature = 0.0, MaxNewTokens = 10, StopTokenIds = [| stop |]))
            Expect.equal s[0].Tokens[s[0].Tokens.Length - 1] stop "ends with the stop token"
            Expect.isFalse s[0].Truncated "stopped, not truncated"

        testCase "200 decode steps keep the number of live tensors flat" <| fun () ->
            use model = tinyModel false torch.float32 20L
            let stats = DisposeScopeManager.Statistics
            let run (steps: int) =
                Sampler.Generate(model, [| prompt (Random 21) 4 |], SamplingOptions(Temperature = 1.0, MaxNewTokens = steps, Seed = 3L)) |> ignore
                GC.Collect(); GC.WaitForPendingFinalizers()
                stats.ThreadTotalLiveCount
            let baseline = run 1
            let after20 = run 20
            let after200 = run 200
            Expect.isLessThanOrEqual (after200 - after20) 2L $"live tensors after 1/20/200 steps: {baseline}/{after20}/{after200}"

        testCase "teacher forcing: continuation log-probabilities equal the full forward's, and the fused objective runs on them" <| fun () ->
            use model = tinyModel false torch.float64 22L
            let rng = Random 23
            let pairs = [| ScoringPair(prompt rng 5, prompt rng 4); ScoringPair(prompt rng 2, prompt rng 7) |]
            use scored = TeacherForcing.Score(model, pairs)
            Expect.sequenceEqual scored.Offsets [| 0; 4 |] "offsets"
            use lp = scored.TokenLogProbs()
            let got = lp.to_type(torch.float64).data<float>().ToArray()
            let mutable row = 0
            for pair in pairs do
                let full = logitsOf model (Array.append pair.Context pair.Continuation)
                for j in 0 .. pair.Continuation.Length - 1 do
                    let expected = (Trd.Core.Numerics.logSoftmax full[pair.Context.Length - 1 + j])[pair.Continuation[j]]
                    Expect.floatClose Accuracy.medium got[row] expected $"row {row}"
                    row <- row + 1
            use mask = torch.ones(11L)
            use fused = ObjectiveExecutor.Fused(Trd.Core.Recipes.trd, scored.Hidden, scored.OutputWeight, scored.Hidden, scored.OutputWeight, mask)
            Expect.floatClose Accuracy.high (fused.Loss.to_type(torch.float64).item<float>()) 0.0 "student = teacher gives zero KL"

        testCase "a continuation tokenised differently under two contexts is reported" <| fun () ->
            let e = Expect.throwsC (fun () -> TeacherForcing.CheckSameContinuation([| 1; 2; 3 |], [| 1; 5; 3 |])) id
            Expect.stringContains e.Message "token 1" "names the first difference"

        testCase "a fresh LoRA adapter leaves outputs unchanged; merged and unmerged outputs agree; adapters off is the base" <| fun () ->
            use model = tinyModel false torch.float64 24L
            let ids = prompt (Random 25) 8
            let before = logitsOf model ids
            for (_, layer) in model.LinearLayers() do layer.AttachAdapter(4, 8.0, 0.0, new torch.Generator(7UL))
            Expect.isLessThan (maxAbsDiff (logitsOf model ids) before) 1e-14 "B = 0: unchanged"
            using (torch.no_grad()) (fun _ ->
                for (_, layer) in model.LinearLayers() do
                    let struct (_, b) = layer.Adapter.Value
                    b.normal_(0.0, 0.1) |> ignore)
            let adapted = logitsOf model ids
            Expect.isGreaterThan (maxAbsDiff adapted before) 1e-3 "the adapter now changes the output"
            model.SetAdaptersEnabled false
            Expect.isLessThan (maxAbsDiff (logitsOf model ids) before) 1e-14 "adapters off: the base model"
            model.SetAdaptersEnabled true
            for (_, layer) in model.LinearLayers() do layer.MergeAdapter()
            Expect.isLessThan (maxAbsDiff (logitsOf model ids) adapted) 1e-10 "merged = unmerged"
            let names = model.named_parameters() |> Seq.map (fun struct (n, _) -> n)
            Expect.isFalse (names |> Seq.exists (fun n -> n.Contains "lora_")) "no adapter parameters after merging"

        testCase "LoRA dropout is applied in training mode and not in evaluation mode" <| fun () ->
            use model = tinyModel false torch.float64 26L
            for (_, layer) in model.LinearLayers() do
                layer.AttachAdapter(4, 8.0, 0.5, new torch.Generator(8UL))
                let struct (_, b) = layer.Adapter.Value
                using (torch.no_grad()) (fun _ -> b.normal_(0.0, 0.1) |> ignore)
            let ids = prompt (Random 27) 6
            model.train()
            let a, b = logitsOf model ids, logitsOf model ids
            Expect.isGreaterThan (maxAbsDiff a b) 1e-6 "two training-mode passes differ (dropout on the adapter input)"
            model.eval()
            Expect.isLessThan (maxAbsDiff (logitsOf model ids) (logitsOf model ids)) 1e-14 "evaluation mode is deterministic"
        testCase "a model saved by the runtime reloads bit-identically, single-file and sharded" <| fun () ->
            use model = tinyModel false torch.float32 30L
            let bytesOf (m: Qwen3ForCausalLM) =
                Qwen3Checkpoint.BaseParameters(m) |> Seq.map (fun kv -> kv.Key, kv.Value.bytes.ToArray()) |> Map.ofSeq
            let original = bytesOf model
            for shard in [ Int64.MaxValue; 20_000L ] do
                let dir = IO.Path.Combine(IO.Path.GetTempPath(), $"trd-model-{Guid.NewGuid():N}")
                try
                    let files = Qwen3Checkpoint.Save(model, dir, shard)
                    if shard < Int64.MaxValue then Expect.isGreaterThan files.Count 2 "several shards and an index"
                    use loaded = Qwen3Checkpoint.Load(dir)
                    Expect.equal (bytesOf loaded) original "every parameter's bytes"
                    let ids = prompt (Random 31) 7
                    Expect.equal (maxAbsDiff (logitsOf loaded ids) (logitsOf model ids)) 0.0 "identical logits"
                finally IO.Directory.Delete(dir, true)

        testCase "a LoRA adapter saved in PEFT's format reloads bit-identically and gives the same outputs" <| fun () ->
            use model = tinyModel false torch.float32 32L
            let config = LoraConfig(Rank = 4, Alpha = 8.0, Dropout = 0.05, TargetModules = [| "q_proj"; "v_proj"; "down_proj" |])
            PeftAdapter.Attach(model, config, 5L)
            for (_, layer) in model.LinearLayers() do
                if layer.HasAdapter then
                    let struct (_, b) = layer.Adapter.Value
                    using (torch.no_grad()) (fun _ -> b.normal_(0.0, 0.1) |> ignore)
            let dir = IO.Path.Combine(IO.Path.GetTempPath(), $"trd-adapter-{Guid.NewGuid():N}")
            try
                PeftAdapter.Save(model, config, dir, "tiny-qwen3")
                let keys = (Trd.Runtime.Checkpoints.SafeTensors.Open(IO.Path.Combine(dir, PeftAdapter.WeightsFileName))).Names
                Expect.contains keys "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" "PEFT's key names"
                Expect.equal keys.Count (2 * 3 * 2) "2 layers × 3 targets × (A, B)"
                let json = IO.File.ReadAllText(IO.Path.Combine(dir, PeftAdapter.ConfigFileName))
                for field in [ "\"peft_type\": \"LORA\""; "\"r\": 4"; "\"lora_alpha\": 8"; "\"target_modules\"" ] do
                    Expect.stringContains json field $"adapter_config.json has {field}"
                use fresh = tinyModel false torch.float32 32L
                let loaded = PeftAdapter.Load(fresh, dir)
                Expect.equal loaded.Rank 4 "rank"
                let adapters (m: Qwen3ForCausalLM) =
                    [ for (path, layer) in m.LinearLayers() do
                        if layer.HasAdapter then
                            let struct (a, b) = layer.Adapter.Value
                            yield path, a.bytes.ToArray(), b.bytes.ToArray() ]
                Expect.equal (adapters fresh) (adapters model) "adapter bytes"
                let ids = prompt (Random 33) 6
                Expect.equal (maxAbsDiff (logitsOf fresh ids) (logitsOf model ids)) 0.0 "same outputs"
            finally IO.Directory.Delete(dir, true)

        testCase "an adapter configuration the runtime cannot apply is an error naming the field" <| fun () ->
            let dir = IO.Path.Combine(IO.Path.GetTempPath(), $"trd-adapter-{Guid.NewGuid():N}")
            IO.Directory.CreateDirectory dir |> ignore
            try
                IO.File.WriteAllText(IO.Path.Combine(dir, PeftAdapter.ConfigFileName),
                    """{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"], "use_dora": true}""")
                let e = Expect.throwsC (fun () -> PeftAdapter.ReadConfig(IO.Path.Combine(dir, PeftAdapter.ConfigFileName)) |> ignore) id
                Expect.stringContains e.Message "use_dora" "names the field"
            finally IO.Directory.Delete(dir, true)
    ]
