/// GGUF export: the format against its own reader and ggml's rounding rules, then the exported files against
/// llama.cpp itself (LLamaSharp 0.30.0's CPU build), an independent Qwen3: logits at every position of a few
/// chats, the tokenizer on the tokenizer corpus, the quantised exports, and a merged LoRA adapter.
module Trd.Tests.GgufTests

open System
open System.IO
open System.Text.Json.Nodes
open Expecto
open TorchSharp
open Trd.Runtime.Checkpoints
open Trd.Runtime.Export
open Trd.Runtime.Lora
open Trd.Runtime.Models
open Trd.Runtime.Tokenization
open LLama
open LLama.Common
open LLama.Native

type private ST = torch.ScalarType

let private tempDir () =
    let d = Path.Combine(Path.GetTempPath(), "trd-gguf-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory d |> ignore
    d

// ---------------------------------------------------------------------------------------------------------------
// llama.cpp through LLamaSharp

/// llama.cpp's log, quiet but for errors (configured once, before the native library loads).
let private llamaReady =
    lazy (NativeLibraryConfig.All.WithLogCallback(fun level message -> if level = LLamaLogLevel.Error then eprintf "llama.cpp: %s" message) |> ignore)

/// llama.cpp's parameters for the checks: CPU, 2 threads, float32 KV cache, flash attention off (its CPU kernel
/// rounds Q·K through float16), a context as long as the longest sequence checked.
let private llamaParams (path: string) (context: int) (flash: bool) =
    ModelParams(path, ContextSize = Nullable(uint32 context), BatchSize = uint32 context, UBatchSize = uint32 context,
                Threads = Nullable 2, BatchThreads = Nullable 2, GpuLayerCount = 0,
                TypeK = Nullable GGMLType.GGML_TYPE_F32, TypeV = Nullable GGMLType.GGML_TYPE_F32, FlashAttention = Nullable flash)

/// llama.cpp's logits at every position of each sequence (each decoded from an empty cache): [sequence][position][V].
let llamaLogitsWith (flash: bool) (path: string) (sequences: int[][]) : float32[][][] =
    llamaReady.Force()
    let context = (sequences |> Array.map Array.length |> Array.max) + 8
    let p = llamaParams path context flash
    use weights = LLamaWeights.LoadFromFile p
    use ctx = weights.CreateContext p
    [| for ids in sequences ->
         ctx.NativeHandle.MemoryClear(true)
         let batch = LLamaBatch()
         ids |> Array.iteri (fun i id -> batch.Add(LLamaToken.op_Implicit id, LLamaPos.op_Implicit i, LLamaSeqId.Zero, true) |> ignore)
         let result = ctx.Decode batch
         if result <> DecodeResult.Ok then failwith $"llama.cpp's decode returned {result}"
         [| for i in 0 .. ids.Length - 1 -> ctx.NativeHandle.GetLogitsIth(i).ToArray() |] |]

/// llama.cpp's logits with flash attention off (the checks' setting).
let llamaLogits path sequences = llamaLogitsWith false path sequences

/// llama.cpp's tokenizer on each text (no BOS, special tokens parsed).
let llamaTokenize (path: string) (texts: string[]) : int[][] =
    llamaReady.Force()
    let p = ModelParams(path, VocabOnly = true)
    use weights = LLamaWeights.LoadFromFile p
    [| for text in texts -> weights.NativeHandle.Tokenize(text, false, true, Text.Encoding.UTF8) |> Array.map (fun t -> int t) |]

/// Trd's float32 logits at every position of each sequence: [sequence][position][V].
let trdLogits (model: Qwen3ForCausalLM) (sequences: int[][]) : float32[][][] =
    use _ = torch.no_grad()
    [| for ids in sequences ->
         use scope = torch.NewDisposeScope()
         let input = torch.tensor(ids |> Array.map int64, dtype = ST.Int64).unsqueeze 0                  // [1, T]
         let logits = model.Forward(input).squeeze(0).to_type(ST.Float32).contiguous()                    // [T, V]
         let flat = logits.data<float32>().ToArray()
         let v = int logits.shape[1]
         Array.init ids.Length (fun t -> flat[t * v .. (t + 1) * v - 1]) |]

/// Agreement of two sets of logits: positions, argmax matches, max |Δlogit|, max |logit|.
type Agreement = { Positions: int; ArgmaxEqual: int; MaxDelta: float; MaxLogit: float }

let agreement (a: float32[][][]) (b: float32[][][]) =
    let argmax (xs: float32[]) = xs |> Array.mapi (fun i x -> i, x) |> Array.maxBy snd |> fst
    let rows = Array.zip (Array.concat a) (Array.concat b)
    { Positions = rows.Length
      ArgmaxEqual = rows |> Array.filter (fun (x, y) -> argmax x = argmax y) |> Array.length
      MaxDelta = rows |> Array.map (fun (x, y) -> Array.map2 (fun p q -> abs (float p - float q)) x y |> Array.max) |> Array.max
      MaxLogit = rows |> Array.map (fst >> Array.map (float >> abs) >> Array.max) |> Array.max }

// ---------------------------------------------------------------------------------------------------------------
// models

/// Chats rendered with the model's tokenizer (Qwen3's template), as token ids.
let private chats (tokenizer: ITokenizer) =
    [| [ ChatMessage.User "Compute 12 + 7 + 30."; ChatMessage.Assistant("12+7=19. 19+30=49. \\boxed{49}") ]
       [ ChatMessage.System "Answer briefly."; ChatMessage.User "What is 5 + 8 + 2 + 9?" ]
       [ ChatMessage.User "Wait, 4+4=8."; ChatMessage.Assistant("Wait, let me redo this. 4+4=8. \\boxed{8}"); ChatMessage.User "and 8+1?" ] |]
    |> Array.map (fun m -> ChatTemplate.Encode(tokenizer, List.toArray m, true, true))

/// The gym's student (its 704-id tokenizer), from the model cache.
let private gymStudent = lazy (Trd.Runtime.Gym.GymModels.Ensure(Trd.Runtime.Gym.GymModels.Student, Trd.Runtime.Gym.GymModels.DefaultCacheRoot()))

/// A random Qwen3 with the real vocabulary (151,669 tokens in 151,936 ids, Qwen3's tokenizer.json and
/// tokenizer_config.json), hidden 64, 2 layers, 4 query and 2 key/value heads of width 32, saved once.
let private realVocabularyModel =
    lazy (
        let dir = tempDir ()
        let config = Qwen3Config.Tiny(vocabSize = 151936, hiddenSize = 64, numHiddenLayers = 2, numAttentionHeads = 4, numKeyValueHeads = 2,
                                      headDim = 32, intermediateSize = 128, maxPositionEmbeddings = 512, eosTokenIds = [| 151645L |], bosTokenId = Nullable 151643L)
        use model = new Qwen3ForCausalLM(config, torch.CPU, ST.Float32)
        model.InitialiseRandom(7L, 0.5)
        Qwen3Checkpoint.Save(model, dir) |> ignore
        for file in [ "tokenizer.json"; "tokenizer_config.json" ] do
            File.Copy(Path.Combine(TestData.qwen3ModelDirectory.Force(), file), Path.Combine(dir, file))
        dir)

/// A tiny model directory with the gym's tokenizer, for the format tests (vocab 704 like the gym's).
let private tinyWithTokenizer (dir: string) (config: Qwen3Config) (seed: int64) =
    use model = new Qwen3ForCausalLM(config, torch.CPU, ST.Float32)
    model.InitialiseRandom(seed, 0.3)
    Qwen3Checkpoint.Save(model, dir) |> ignore
    File.Copy(Path.Combine(gymStudent.Force(), "tokenizer.json"), Path.Combine(dir, "tokenizer.json"))

let private gymSizedConfig (tied: bool) =
    Qwen3Config.Tiny(vocabSize = 704, hiddenSize = 64, numHiddenLayers = 2, numAttentionHeads = 4, numKeyValueHeads = 2, headDim = 16,
                     intermediateSize = 96, tieWordEmbeddings = tied)

let private trd (args: string list) =
    let psi = Diagnostics.ProcessStartInfo("dotnet", CliTests.trdDll.Force() :: args, RedirectStandardOutput = true, RedirectStandardError = true)
    use p = Diagnostics.Process.Start psi
    let out = p.StandardOutput.ReadToEnd()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out, err

[<Tests>]
let formatTests =
    testList "Gguf.format" [
        testCase "what the writer writes, the reader reads back: metadata of every kind, tensors of every type, aligned offsets" <| fun () ->
            let dir = tempDir ()
            let path = Path.Combine(dir, "t.gguf")
            let rng = Random 3
            let values = Array.init (64 * 3) (fun _ -> float32 (rng.NextDouble() * 4.0 - 2.0))
            let tensors = [| GgufTensorInfo("a", [| 64L; 3L |], GgmlType.F32); GgufTensorInfo("b", [| 64L; 3L |], GgmlType.F16)
                             GgufTensorInfo("c", [| 64L; 3L |], GgmlType.BF16); GgufTensorInfo("d", [| 64L; 3L |], GgmlType.Q8_0)
                             GgufTensorInfo("e", [| 5L |], GgmlType.F32) |]
            let metadata =
                [ "k.u32", GgufValue.UInt32 7u; "k.i32", GgufValue.Int32 -3; "k.f32", GgufValue.Float32 1.5f; "k.bool", GgufValue.Bool true
                  "k.str", GgufValue.String "héllo"; "k.strs", GgufValue.Strings [| "a b"; ""; "<|im_end|>" |]; "k.ints", GgufValue.Int32s [| 1; 2; 3 |]
                  "k.u64", GgufValue.UInt64 (1UL <<< 40) ]
                |> List.map (fun (k, v) -> Collections.Generic.KeyValuePair(k, v)) |> List.toArray
            use file = File.Create path
            GgufWriter.Write(file, metadata, tensors, fun i s ->
                let info = tensors[i]
                let src = if info.Name = "e" then values[0..4] else values
                let bytes = Array.zeroCreate<byte> (int info.ByteCount)
                GgmlQuant.Encode(ReadOnlySpan src, info.Type, Span bytes)
                s.Write(bytes, 0, bytes.Length)) |> ignore
            file.Dispose()
            let read = GgufReader.Read path
            Expect.equal read.Version 3u "version 3"
            Expect.equal (read["k.u32"].AsInteger()) 7L "uint32"
            Expect.equal (read["k.i32"].AsInteger()) -3L "int32"
            Expect.equal (read["k.f32"].AsFloat()) 1.5 "float32"
            Expect.equal (read["k.bool"].Value :?> bool) true "bool"
            Expect.equal (read["k.str"].AsString()) "héllo" "UTF-8 string"
            Expect.equal (read["k.strs"].Value :?> string[]) [| "a b"; ""; "<|im_end|>" |] "string array"
            Expect.equal (read["k.ints"].Value :?> int[]) [| 1; 2; 3 |] "int32 array"
            Expect.equal (read["k.u64"].AsInteger()) (1L <<< 40) "uint64"
            for t in read.Tensors do Expect.equal (t.Offset % 32L) 0L $"{t.Name} aligned to 32"
            Expect.equal (read.DataOffset % 32L) 0L "data section aligned"
            Expect.equal (read.ReadFloats "a") values "F32 exact"
            Expect.equal (read.ReadFloats "e") values[0..4] "a vector"
            let f16 = read.ReadFloats "b"
            Expect.isTrue (Array.forall2 (fun (x: float32) (y: float32) -> abs (x - y) <= abs x * 0.0005f + 1e-7f) values f16) "F16 within half an ulp"
            let bf16 = read.ReadFloats "c"
            Expect.isTrue (Array.forall2 (fun (x: float32) (y: float32) -> abs (x - y) <= abs x * 0.004f) values bf16) "BF16 within half an ulp"
            let q8 = read.ReadFloats "d"
            for b in 0 .. values.Length / 32 - 1 do
                let block = values[32 * b .. 32 * b + 31]
                let d = (block |> Array.map abs |> Array.max) / 127.0f
                for j in 0 .. 31 do
                    Expect.isLessThanOrEqual (abs (block[j] - q8[32 * b + j])) (d * (0.5f + 127.0f / 2048.0f) + 1e-7f) $"Q8_0 block {b}[{j}] within d/2 (+ 127 × d's float16 rounding, ≤ d·2⁻¹¹)"
            Directory.Delete(dir, true)

        testCase "bfloat16 and float16 rounding match libtorch's (to nearest, ties to even); NaN stays NaN" <| fun () ->
            let rng = Random 11
            let values =
                Array.append
                    (Array.init 4096 (fun _ -> float32 ((rng.NextDouble() - 0.5) * Math.Pow(10.0, float (rng.Next(-8, 8))))))
                    [| 0.0f; -0.0f; 1.0f; 1.00390625f (* a bf16 tie: 1 + 2^-8 → 1 *); 1.01171875f (* 1 + 3·2^-8 → 1 + 2^-6 *); 65504.0f; 3.0e38f; Single.Epsilon |]
            use t = torch.tensor(values)
            use viaTorch = t.to_type(ST.BFloat16).to_type(ST.Float32)
            let torchBf16 = viaTorch.data<float32>().ToArray()
            let ours = values |> Array.map (fun v -> BitConverter.Int32BitsToSingle(int (GgmlQuant.ToBf16 v) <<< 16))
            Expect.equal ours torchBf16 "bf16 bits equal libtorch's"
            Expect.equal (GgmlQuant.ToBf16 1.00390625f) 0x3F80us "tie to even (down)"
            Expect.equal (GgmlQuant.ToBf16 1.01171875f) 0x3F82us "tie to even (up)"
            Expect.isTrue (Single.IsNaN(BitConverter.Int32BitsToSingle(int (GgmlQuant.ToBf16 Single.NaN) <<< 16))) "NaN"
            use viaTorch16 = t.to_type(ST.Float16).to_type(ST.Float32)
            let bytes = Array.zeroCreate<byte> (2 * values.Length)
            GgmlQuant.Encode(ReadOnlySpan values, GgmlType.F16, Span bytes)
            Expect.equal (GgmlQuant.Decode(ReadOnlySpan bytes, GgmlType.F16, values.Length)) (viaTorch16.data<float32>().ToArray()) "f16 equal libtorch's"

        testCase "Q8_0 blocks: d = max|x|/127 in float16, q = round half away from zero; an all-zero block is zeros" <| fun () ->
            let block = Array.init 32 (fun j -> float32 (j - 16) * 0.5f)     // max |x| = 8
            let bytes = Array.zeroCreate<byte> 34
            GgmlQuant.Encode(ReadOnlySpan block, GgmlType.Q8_0, Span bytes)
            let d = BitConverter.ToHalf(bytes, 0)
            Expect.equal d (Half.op_Explicit (8.0f / 127.0f)) "d = 8/127 as float16"
            Expect.equal (sbyte bytes[2]) -127y "the extreme maps to −127"
            Expect.equal (sbyte bytes[2 + 17]) (sbyte (Math.Round(0.5 * 127.0 / 8.0, MidpointRounding.AwayFromZero))) "0.5 → round(7.94) = 8"
            let zeros = Array.zeroCreate<byte> 34
            GgmlQuant.Encode(ReadOnlySpan(Array.zeroCreate<float32> 32), GgmlType.Q8_0, Span zeros)
            Expect.equal zeros (Array.zeroCreate 34) "zero block"
            Expect.throws (fun () -> GgmlTypes.RowBytes(GgmlType.Q8_0, 48L) |> ignore) "a row of 48 is not whole blocks"

        testCase "the reader refuses a damaged file with a sentence naming it: no magic, truncated, absurd counts" <| fun () ->
            let dir = tempDir ()
            let write (name: string) (bytes: byte[]) = let p = Path.Combine(dir, name) in File.WriteAllBytes(p, bytes); p
            let refuses (path: string) (fragment: string) =
                let message =
                    try GgufReader.Read path |> ignore; failtest $"{path} was read"
                    with :? CheckpointException as e -> e.Message
                Expect.stringContains message path "names the file"
                Expect.stringContains message fragment fragment
            refuses (write "magic.gguf" (Array.create 64 0uy)) "no \"GGUF\" magic"
            let header (tensors: uint64) (kvs: uint64) =
                Array.concat [ "GGUF"B; BitConverter.GetBytes 3u; BitConverter.GetBytes tensors; BitConverter.GetBytes kvs ]
            refuses (write "counts.gguf" (Array.append (header 1000000000UL 1UL) (Array.zeroCreate 16))) "exceed what the file can hold"
            refuses (write "short.gguf" (Array.append (header 0UL 1UL) (Array.concat [ BitConverter.GetBytes 3UL; "abc"B ]))) "ends inside its header"
            refuses (write "string.gguf" (Array.append (header 0UL 1UL) (BitConverter.GetBytes 99999UL))) "runs past the end of the file"
            Directory.Delete(dir, true)
    ]

[<Tests>]
let exportTests =
    testList "Gguf.export" [
        testCase "trd export gguf writes llama.cpp's names, keys and tokenizer; the tensors hold the checkpoint's values" <| fun () ->
            let dir = tempDir ()
            let model = Path.Combine(dir, "m")
            tinyWithTokenizer model (gymSizedConfig false) 5L
            let out = Path.Combine(dir, "m.gguf")
            let code, stdout, err = trd [ "export"; "gguf"; "-m"; model; "-o"; out ]
            Expect.equal code 0 err
            Expect.stringContains stdout "25 tensors" "the summary line (embedding, 11 per layer, norm, output)"
            let g = GgufReader.Read out
            Expect.equal (g["general.architecture"].AsString()) "qwen3" "architecture"
            for key, value in [ "qwen3.block_count", 2L; "qwen3.embedding_length", 64L; "qwen3.feed_forward_length", 96L
                                "qwen3.attention.head_count", 4L; "qwen3.attention.head_count_kv", 2L; "qwen3.attention.key_length", 16L
                                "general.file_type", 0L ] do
                Expect.equal (g[key].AsInteger()) value key
            Expect.equal (g["qwen3.rope.freq_base"].AsFloat()) 1e6 "rope base"
            Expect.equal (g["tokenizer.ggml.model"].AsString()) "gpt2" "byte-level BPE"
            Expect.equal (g["tokenizer.ggml.pre"].AsString()) "qwen2" "Qwen's pre-tokenizer"
            let tokens = g["tokenizer.ggml.tokens"].Value :?> string[]
            let types = g["tokenizer.ggml.token_type"].Value :?> int[]
            Expect.equal tokens.Length 704 "one token per id"
            let tokenizer = Qwen3Tokenizer.FromDirectory model
            let imEnd = tokenizer.EndOfTurnId
            Expect.equal tokens[imEnd] "<|im_end|>" "the added token at its id"
            Expect.equal types[imEnd] 3 "<|im_end|> is a control token"
            let think = Array.findIndex ((=) "<think>") tokens
            Expect.equal types[think] 4 "<think> is user-defined (not special)"
            Expect.equal tokens[703] "[PAD703]" "ids past the tokenizer are padding"
            Expect.equal types[703] 5 "… of type unused"
            let names = g.Tensors |> Seq.map (fun t -> t.Name) |> Set.ofSeq
            for n in [ "token_embd.weight"; "output.weight"; "output_norm.weight"; "blk.0.attn_q.weight"; "blk.1.attn_k_norm.weight"; "blk.1.ffn_down.weight" ] do
                Expect.contains names n n
            Expect.equal (g.Tensor "blk.0.attn_q.weight").Dimensions [| 64L; 64L |] "q [in, out]"
            Expect.equal (g.Tensor "blk.0.ffn_down.weight").Dimensions [| 96L; 64L |] "down [intermediate, hidden]"
            let checkpoint = CheckpointDirectory.OpenTensors model
            use down = checkpoint.Load("model.layers.0.mlp.down_proj.weight")
            Expect.equal (g.ReadFloats "blk.0.ffn_down.weight") (down.contiguous().data<float32>().ToArray()) "the bytes of the checkpoint"
            Directory.Delete(dir, true)

        testCase "a sharded checkpoint exports to the same file as the single-file one" <| fun () ->
            let dir = tempDir ()
            let single = Path.Combine(dir, "single")
            tinyWithTokenizer single (gymSizedConfig false) 5L
            let sharded = Path.Combine(dir, "sharded")
            use model = Qwen3Checkpoint.Load(single, torch.CPU, ST.Float32)
            let files = Qwen3Checkpoint.Save(model, sharded, 100_000L)
            Expect.isGreaterThan files.Count 2 "several shards"
            File.Copy(Path.Combine(single, "tokenizer.json"), Path.Combine(sharded, "tokenizer.json"))
            let a, b = Path.Combine(dir, "a.gguf"), Path.Combine(dir, "b.gguf")
            Qwen3Gguf.Export(single, a, name = "m") |> ignore
            Qwen3Gguf.Export(sharded, b, name = "m") |> ignore
            Expect.equal (File.ReadAllBytes b) (File.ReadAllBytes a) "the same bytes"
            Directory.Delete(dir, true)

        testCase "a bfloat16 checkpoint: --dtype bf16 writes its matrices' bytes unchanged, f32 their exact widening" <| fun () ->
            let dir = tempDir ()
            let raw = Path.Combine(dir, "raw")
            tinyWithTokenizer raw (gymSizedConfig false) 8L
            let bf16 = Path.Combine(dir, "bf16")
            use model = Qwen3Checkpoint.Load(raw, torch.CPU, ST.BFloat16)
            Qwen3Checkpoint.Save(model, bf16) |> ignore
            File.Copy(Path.Combine(raw, "tokenizer.json"), Path.Combine(bf16, "tokenizer.json"))
            let a, b = Path.Combine(dir, "a.gguf"), Path.Combine(dir, "b.gguf")
            Qwen3Gguf.Export(bf16, a, GgufDType.BF16) |> ignore
            Qwen3Gguf.Export(bf16, b, GgufDType.F32) |> ignore
            let checkpoint = CheckpointDirectory.OpenTensors bf16
            use stored = checkpoint.Load("model.layers.1.mlp.up_proj.weight")                       // [96, 64] bf16
            use widened = stored.to_type(ST.Float32)
            let expected = widened.contiguous().data<float32>().ToArray()
            let ga, gb = GgufReader.Read a, GgufReader.Read b
            Expect.equal (ga.Tensor "blk.1.ffn_up.weight").Type GgmlType.BF16 "bf16"
            Expect.equal (ga.ReadFloats "blk.1.ffn_up.weight") expected "bf16 → bf16: the same values (so the same bytes)"
            Expect.equal (gb.ReadFloats "blk.1.ffn_up.weight") expected "bf16 → f32: the exact widening"
            Directory.Delete(dir, true)

        testCase "tied embeddings: no output tensor (llama.cpp reuses token_embd); q8_0 falls back to f16 for rows not in blocks of 32" <| fun () ->
            let dir = tempDir ()
            let model = Path.Combine(dir, "m")
            let config = Qwen3Config.Tiny(vocabSize = 704, hiddenSize = 64, numHiddenLayers = 2, numAttentionHeads = 4, numKeyValueHeads = 2,
                                          headDim = 16, intermediateSize = 48, tieWordEmbeddings = true)
            tinyWithTokenizer model config 6L
            let out = Path.Combine(dir, "q.gguf")
            let code, stdout, err = trd [ "export"; "gguf"; "-m"; model; "-o"; out; "--dtype"; "q8_0" ]
            Expect.equal code 0 err
            Expect.stringContains stdout "2 matrices written f16" "the fallback is reported"
            let g = GgufReader.Read out
            Expect.isFalse (g.Tensors |> Seq.exists (fun t -> t.Name = "output.weight")) "no output.weight"
            Expect.equal (g.Tensor "blk.0.ffn_down.weight").Type GgmlType.F16 "rows of 48 are not whole blocks of 32: f16"
            Expect.equal (g.Tensor "blk.0.ffn_up.weight").Type GgmlType.Q8_0 "rows of 64: Q8_0"
            Expect.equal (g.Tensor "token_embd.weight").Type GgmlType.Q8_0 "the embedding too"
            Expect.equal (g.Tensor "blk.0.attn_norm.weight").Type GgmlType.F32 "norms stay f32"
            Expect.equal (g["general.file_type"].AsInteger()) 7L "MOSTLY_Q8_0"
            Directory.Delete(dir, true)

        testCase "the file carries the directory's chat template; a directory without one gets Qwen3's original; an unknown one is refused" <| fun () ->
            let dir = tempDir ()
            let model = Path.Combine(dir, "m")
            tinyWithTokenizer model (gymSizedConfig false) 5L
            let template (path: string) = (GgufReader.Read path).Metadata |> Seq.find (fun kv -> kv.Key = "tokenizer.chat_template") |> fun kv -> kv.Value.AsString()
            let known (kind: ChatTemplateKind) = (KnownChatTemplates.All |> Seq.find (fun t -> t.Kind = kind)).Text
            let plain = Path.Combine(dir, "plain.gguf")
            let code, stdout, err = trd [ "export"; "gguf"; "-m"; model; "-o"; plain ]
            Expect.equal code 0 err
            Expect.stringContains stdout "Qwen3's original template" "says where the template came from"
            Expect.equal (template plain) (known ChatTemplateKind.Qwen3) "Qwen3's original"
            File.WriteAllText(Path.Combine(model, "chat_template.jinja"), known ChatTemplateKind.Qwen3Thinking2507)
            let thinking = Path.Combine(dir, "thinking.gguf")
            let code, stdout, err = trd [ "export"; "gguf"; "-m"; model; "-o"; thinking ]
            Expect.equal code 0 err
            Expect.stringContains stdout "chat_template.jinja" "names the file"
            Expect.equal (template thinking) (known ChatTemplateKind.Qwen3Thinking2507) "the directory's text, verbatim"
            File.WriteAllText(Path.Combine(model, "chat_template.jinja"), "{{ messages }}")
            let code, _, err = trd [ "export"; "gguf"; "-m"; model; "-o"; Path.Combine(dir, "unknown.gguf") ]
            Expect.equal code 2 err
            Expect.stringContains err (Path.Combine(model, "chat_template.jinja")) "names the file"
            Expect.isFalse (File.Exists(Path.Combine(dir, "unknown.gguf"))) "nothing written"
            Directory.Delete(dir, true)

        testCase "bad input is exit 2 with a sentence naming what is wrong, and no file is written" <| fun () ->
            let dir = tempDir ()
            let model = Path.Combine(dir, "m")
            tinyWithTokenizer model (gymSizedConfig false) 5L
            let out = Path.Combine(dir, "x.gguf")
            // not a Qwen3 config
            let other = Path.Combine(dir, "llama")
            Directory.CreateDirectory other |> ignore
            for f in Directory.GetFiles model do File.Copy(f, Path.Combine(other, Path.GetFileName f))
            let config = JsonNode.Parse(File.ReadAllText(Path.Combine(other, "config.json"))).AsObject()
            config["model_type"] <- JsonValue.Create "llama"
            File.WriteAllText(Path.Combine(other, "config.json"), config.ToJsonString())
            let code, _, err = trd [ "export"; "gguf"; "-m"; other; "-o"; out ]
            Expect.equal code 2 err
            Expect.stringContains err "model_type" "names the field"
            // no tokenizer: an error naming the file and --tokenizer; with --tokenizer, the export works
            File.Delete(Path.Combine(other, "tokenizer.json"))
            config["model_type"] <- JsonValue.Create "qwen3"
            File.WriteAllText(Path.Combine(other, "config.json"), config.ToJsonString())
            let code, _, err = trd [ "export"; "gguf"; "-m"; other; "-o"; out ]
            Expect.equal code 2 err
            Expect.stringContains err "tokenizer.json" "names the missing file"
            Expect.stringContains err "--tokenizer" "says what to pass"
            let borrowed = Path.Combine(dir, "borrowed.gguf")
            let code, _, err = trd [ "export"; "gguf"; "-m"; other; "--tokenizer"; model; "-o"; borrowed ]
            Expect.equal code 0 err
            Expect.equal ((GgufReader.Read borrowed).Tensors.Count) 25 "exported with the other directory's tokenizer"
            File.Delete borrowed
            // an adapter for another base (rank-4 adapter of a hidden-32 model)
            let smaller = Path.Combine(dir, "small")
            use small = new Qwen3ForCausalLM(Qwen3Config.Tiny(vocabSize = 704), torch.CPU, ST.Float32)
            small.InitialiseRandom(1L, 0.1)
            let lora = LoraConfig(Rank = 4, Alpha = 8.0, Dropout = 0.0)
            PeftAdapter.Attach(small, lora, 0L)
            PeftAdapter.Save(small, lora, smaller, "small")
            let code, _, err = trd [ "export"; "gguf"; "-m"; model; "--adapter"; smaller; "-o"; out ]
            Expect.equal code 2 err
            Expect.stringContains err "adapter_model.safetensors" "names the adapter file"
            Expect.stringContains err "another base" "says why"
            // a bad --dtype
            let code, _, err = trd [ "export"; "gguf"; "-m"; model; "-o"; out; "--dtype"; "q4_k" ]
            Expect.equal code 2 err
            Expect.isFalse (File.Exists out) "nothing written by the failures"
            Expect.isEmpty (Directory.GetFiles(dir) |> Array.filter (fun f -> f.EndsWith ".tmp")) "no temporary file left"
            // an existing file is kept unless --force
            File.WriteAllText(out, "keep me")
            let code, _, err = trd [ "export"; "gguf"; "-m"; model; "-o"; out ]
            Expect.equal code 2 err
            Expect.stringContains err "--force" "says how to replace"
            Expect.equal (File.ReadAllText out) "keep me" "the file is untouched"
            Directory.Delete(dir, true)
    ]

/// Max |Δlogit| allowed between llama.cpp and Trd at float32, relative to the largest |logit|: both compute in float32
/// but sum in different orders (ggml's SIMD dot products, libtorch's BLAS), so they differ by float32 rounding
/// carried through the layers — measured 1.3e-6 × max |logit| (4e-5 at 30.5) on the gym student and 1.4e-6 on the
/// real-vocabulary model (2026-12-03, this machine). 5e-5 leaves a 35× margin and is still 40× below the
/// float16 rounding llama.cpp's flash-attention kernel adds (0.05 at 30.5, printed by the first test), so an
/// export that lost precision anywhere (a weight through float16, a mis-scaled norm) fails.
let private relativeBound = 5e-5

/// Prints an f32 agreement and holds it to the checks: argmax equal everywhere, max |Δlogit| within the bound.
let private expectF32Agreement (label: string) (a: Agreement) =
    printfn "%s: %d positions, argmax equal %d, max |Δlogit| %.5f (max |logit| %.2f)" label a.Positions a.ArgmaxEqual a.MaxDelta a.MaxLogit
    Expect.equal a.ArgmaxEqual a.Positions "argmax equal everywhere"
    Expect.isLessThanOrEqual a.MaxDelta (relativeBound * a.MaxLogit) "max |Δlogit| within the bound"

/// The real-vocabulary model exported once at f32, shared by the checks that read it.
let private realVocabularyGguf =
    lazy (
        let out = Path.Combine(tempDir (), "real.gguf")
        let summary = Qwen3Gguf.Export(realVocabularyModel.Force(), out)
        out, summary)

[<Tests>]
let llamaCppTests =
    testList "Gguf.llama.cpp" [
        testCase "the gym student at f32: llama.cpp's logits equal Trd's at every position of three chats (argmax; |Δ| within the bound)" <| fun () ->
            let dir = tempDir ()
            let out = Path.Combine(dir, "student.gguf")
            Qwen3Gguf.Export(gymStudent.Force(), out) |> ignore
            let tokenizer = Qwen3Tokenizer.FromDirectory(gymStudent.Force())
            let sequences = chats tokenizer
            use model = Qwen3Checkpoint.Load(gymStudent.Force(), torch.CPU, ST.Float32)
            model.eval()
            let reference = trdLogits model sequences
            let flash = agreement reference (llamaLogitsWith true out sequences)
            expectF32Agreement "gym student f32" (agreement reference (llamaLogits out sequences))
            printfn "  with llama.cpp's flash attention (float16 Q·K on CPU): argmax equal %d, max |Δlogit| %.5f" flash.ArgmaxEqual flash.MaxDelta
            Directory.Delete(dir, true)

        testCase "a random Qwen3 with the real 151,669-token vocabulary at f32: logits agree at every position" <| fun () ->
            let out, summary = realVocabularyGguf.Force()
            Expect.equal summary.TokenizerTokens 151669 "151,669 tokens"
            let sequences = chats (TestData.qwen3Tokenizer.Force())
            use model = Qwen3Checkpoint.Load(realVocabularyModel.Force(), torch.CPU, ST.Float32)
            model.eval()
            expectF32Agreement "real-vocabulary Qwen3 f32" (agreement (trdLogits model sequences) (llamaLogits out sequences))

        testCase "llama.cpp's tokenizer on the export gives Trd's ids on the tokenizer corpus, but where NFC changes the text" <| fun () ->
            let out, _ = realVocabularyGguf.Force()
            let texts = TokenizerCorpus.generate 20250601 125 |> Array.map snd
            let tokenizer = TestData.qwen3Tokenizer.Force()
            let ours = texts |> Array.map tokenizer.Encode
            let theirs = llamaTokenize out texts
            let differ = [ for i in 0 .. texts.Length - 1 do if ours[i] <> theirs[i] then i ]
            // Qwen3's tokenizer.json normalises to NFC first; llama.cpp does not normalise: a text NFC changes is
            // encoded from different characters there. Every other difference is a bug.
            let unexplained = differ |> List.filter (fun i -> texts[i].Normalize(Text.NormalizationForm.FormC) = texts[i])
            printfn "tokenizer corpus: %d texts, %d differ, all %d of them texts NFC changes" texts.Length differ.Length (differ.Length - unexplained.Length)
            Expect.isEmpty (unexplained |> List.truncate 5 |> List.map (fun i -> texts[i], ours[i], theirs[i])) "no difference but NFC's"
            let normalised = differ |> List.map (fun i -> texts[i].Normalize(Text.NormalizationForm.FormC))
            let again = llamaTokenize out (List.toArray normalised)
            Expect.equal again (differ |> List.map (fun i -> ours[i]) |> List.toArray) "NFC-normalised first, llama.cpp gives Trd's ids"

        testCase "llama.cpp applies the exported template (as ChatML) and gets Trd's prompt text for a system and user turn" <| fun () ->
            llamaReady.Force()
            let dir = tempDir ()
            let out = Path.Combine(dir, "student.gguf")
            Qwen3Gguf.Export(gymStudent.Force(), out) |> ignore
            use weights = LLamaWeights.LoadFromFile(ModelParams(out, VocabOnly = true))
            let template = LLamaTemplate(weights, AddAssistant = true)
            template.Add("system", "Answer briefly.") |> ignore
            template.Add("user", "What is 5 + 8?") |> ignore
            let theirs = Text.Encoding.UTF8.GetString(template.Apply())
            let ours = ChatTemplate.Render([| ChatMessage.System "Answer briefly."; ChatMessage.User "What is 5 + 8?" |], true, true)
            Expect.equal theirs ours "the same prompt text"
            Directory.Delete(dir, true)

        testCase "f16 and q8_0 exports load in llama.cpp and agree with Trd's argmax at most positions" <| fun () ->
            let dir = tempDir ()
            let tokenizer = Qwen3Tokenizer.FromDirectory(gymStudent.Force())
            let sequences = chats tokenizer
            use model = Qwen3Checkpoint.Load(gymStudent.Force(), torch.CPU, ST.Float32)
            model.eval()
            let reference = trdLogits model sequences
            for dtype, minimum in [ GgufDType.F16, 0.97; GgufDType.BF16, 0.9; GgufDType.Q8_0, 0.9 ] do
                let out = Path.Combine(dir, $"student-{GgufDTypes.Word dtype}.gguf")
                Qwen3Gguf.Export(gymStudent.Force(), out, dtype) |> ignore
                let a = agreement reference (llamaLogits out sequences)
                let rate = float a.ArgmaxEqual / float a.Positions
                printfn "gym student %s: argmax equal at %d of %d positions (%.1f%%), max |Δlogit| %.4f" (GgufDTypes.Word dtype) a.ArgmaxEqual a.Positions (100.0 * rate) a.MaxDelta
                Expect.isGreaterThanOrEqual rate minimum $"{GgufDTypes.Word dtype}: argmax agreement at least {minimum}"
            Directory.Delete(dir, true)

        testCase "a LoRA adapter merged at export: llama.cpp's logits equal Trd's model with the adapter attached" <| fun () ->
            let dir = tempDir ()
            let modelDir = Path.Combine(dir, "base")
            tinyWithTokenizer modelDir (gymSizedConfig false) 9L
            use model = Qwen3Checkpoint.Load(modelDir, torch.CPU, ST.Float32)
            let lora = LoraConfig(Rank = 4, Alpha = 8.0, Dropout = 0.0)
            PeftAdapter.Attach(model, lora, 3L)
            do
                use _ = torch.no_grad()
                use rng = new torch.Generator(5UL)
                for struct (_, layer) in model.LinearLayers() do
                    if layer.HasAdapter then
                        let struct (_, b) = layer.Adapter.Value
                        b.normal_(0.0, 0.2, rng) |> ignore   // B ≠ 0: the adapter changes the outputs
            let adapterDir = Path.Combine(dir, "adapter")
            PeftAdapter.Save(model, lora, adapterDir, modelDir)
            model.eval()
            let out = Path.Combine(dir, "merged.gguf")
            let summary = Qwen3Gguf.Export(modelDir, out, GgufDType.F32, adapterDir)
            Expect.equal summary.MergedAdapters 14 "7 projections × 2 layers"
            let sequences = chats (Qwen3Tokenizer.FromDirectory modelDir)
            let withAdapter = trdLogits model sequences
            use plain = Qwen3Checkpoint.Load(modelDir, torch.CPU, ST.Float32)
            plain.eval()
            let without = agreement (trdLogits plain sequences) withAdapter
            Expect.isGreaterThan without.MaxDelta 0.05 "the adapter changes the logits (else the test could not fail)"
            expectF32Agreement "merged LoRA f32" (agreement withAdapter (llamaLogits out sequences))
            Directory.Delete(dir, true)
    ]
