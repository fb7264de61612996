using Trd.Runtime.Checkpoints;
using Trd.Runtime.Lora;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Trd.Runtime.Models;

// The Qwen3 decoder, top to bottom (Hugging Face's modeling_qwen3.py computes the same function):
//
//   ids → embed_tokens → N × [ x += o_proj(attention(rope(q_norm(q_proj(rms(x)))), rope(k_norm(k_proj(rms(x)))), v_proj(rms(x))))
//                              x += down_proj(silu(gate_proj(rms(x))) · up_proj(rms(x))) ] → norm → lm_head (or embed_tokensᵀ when tied)
//
// Shapes: B batch, T positions, H hidden size, Q query heads, K key/value heads (grouped-query attention, G = Q/K
// query heads per key/value head), D head_dim, V vocabulary. Parameter names are Hugging Face's, so a checkpoint
// directory's safetensors load by name.

/// <summary>Which dtype numerically sensitive steps (norms, rotary tables, merges) run in.</summary>
internal static class Precision
{
    /// <summary>float32 for 16-bit types, the type itself for float32 and float64.</summary>
    internal static ScalarType AtLeastFloat32(ScalarType dtype) => dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;
}

/// <summary>Root-mean-square layer norm: x / √(mean(x²) + ε) · w, computed in float32 and cast back.</summary>
public sealed class RmsNorm : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] readonly Parameter _weight;
    readonly double _eps;

    /// <summary>A norm over the last dimension of the given size, weight initialised to one.</summary>
    public RmsNorm(long size, double eps, Device? device = null, ScalarType? dtype = null) : base(nameof(RmsNorm))
    {
        _weight = nn.Parameter(ones(size, dtype: dtype, device: device));
        _eps = eps;
        RegisterComponents();
    }

    /// <summary>x [..., size] → [..., size].</summary>
    public override Tensor forward(Tensor x)
    {
        var wide = x.to(Precision.AtLeastFloat32(x.dtype));  // bf16/fp16 → fp32, as Hugging Face; fp64 stays fp64
        using var eps = _eps.ToScalar();
        var normed = wide * wide.pow(Scalars.Two).mean(new long[] { -1 }, keepdim: true).add(eps, Scalars.One).rsqrt();
        return _weight * normed.to(x.dtype);
    }
}

/// <summary>Rotary position embedding (rotate-half form): cos/sin tables for positions, applied to q and k.</summary>
public sealed class Rotary : nn.Module
{
    readonly Tensor _invFreq64; // [D/2], float64: the tables of a float64 model (the float64 reference)
    readonly Tensor _invFreq32; // [D/2], float32, computed as transformers computes it: every other model's tables

    /// <summary>θ_i = base^(−2i/D), i = 0 … D/2 − 1.</summary>
    /// <remarks>
    /// transformers computes <c>1.0 / (base ** (torch.arange(0, D, 2, dtype=torch.int64).float() / D))</c> in float32
    /// (Qwen3's default RoPE init), so the float32 inverse frequencies are computed the same way, op for op, rather
    /// than in float64 and cast (which differs in the last bit for some i, and so in the tables at long positions).
    /// A float64 model keeps float64 frequencies: it is the reference of the maths, not of transformers' rounding.
    /// </remarks>
    public Rotary(long headDim, double theta, Device? device = null) : base(nameof(Rotary))
    {
        using var scope = NewDisposeScope();   // holds the temporaries below while libtorch reads them
        using var width = headDim.ToScalar();
        var exponents64 = arange(Scalars.Zero, width, Scalars.Two, ScalarType.Float64, device).div(width);      // [D/2]: 2i/D
        _invFreq64 = tensor(theta, ScalarType.Float64, device).pow(exponents64).reciprocal().DetachFromDisposeScope();
        var exponents32 = arange(Scalars.Zero, width, Scalars.Two, ScalarType.Int64, device).to(ScalarType.Float32).div(width); // [D/2]
        _invFreq32 = tensor(theta, ScalarType.Float32, device).pow(exponents32).reciprocal().DetachFromDisposeScope();
        // Not registered: not parameters, not saved (Hugging Face's inv_freq is non-persistent).
    }

    /// <summary>The inverse frequencies the tables of a <paramref name="dtype"/> model use ([D/2], float32 or float64).</summary>
    public Tensor InverseFrequencies(ScalarType dtype) => dtype == ScalarType.Float64 ? _invFreq64 : _invFreq32;

    /// <summary>
    /// positions [B, T] → (cos, sin), each [B, T, 1, D] in the given dtype, computed in float32 as Hugging Face does
    /// (float64 for a float64 model).
    /// </summary>
    public (Tensor cos, Tensor sin) Tables(Tensor positions, ScalarType dtype)
    {
        var wide = Precision.AtLeastFloat32(dtype);
        var freqs = positions.to(wide).unsqueeze(-1) * InverseFrequencies(dtype).to(positions.device); // [B, T, D/2]
        var emb = cat(new[] { freqs, freqs }, -1).unsqueeze(2);                                         // [B, T, 1, D]
        return (emb.cos().to(dtype), emb.sin().to(dtype));
    }

    /// <summary>x [B, T, heads, D] rotated by the tables.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        var half = x.shape[^1] / 2;
        var rotated = cat(new[] { -x.narrow(-1, half, half), x.narrow(-1, 0, half) }, -1); // rotate_half
        return (x * cos).add(rotated * sin, Scalars.One);
    }
}

/// <summary>Grouped-query self-attention with Qwen3's per-head RMSNorm on q and k.</summary>
public sealed class Qwen3Attention : nn.Module
{
    [ComponentName(Name = "q_proj")] readonly LoraLinear _q;
    [ComponentName(Name = "k_proj")] readonly LoraLinear _k;
    [ComponentName(Name = "v_proj")] readonly LoraLinear _v;
    [ComponentName(Name = "o_proj")] readonly LoraLinear _o;
    [ComponentName(Name = "q_norm")] readonly RmsNorm _qNorm;
    [ComponentName(Name = "k_norm")] readonly RmsNorm _kNorm;
    readonly long _heads, _kvHeads, _headDim;

    /// <summary>Layers sized from the configuration.</summary>
    public Qwen3Attention(Qwen3Config c, Device? device, ScalarType? dtype) : base(nameof(Qwen3Attention))
    {
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        _q = new LoraLinear(c.HiddenSize, _heads * _headDim, c.AttentionBias, device, dtype);
        _k = new LoraLinear(c.HiddenSize, _kvHeads * _headDim, c.AttentionBias, device, dtype);
        _v = new LoraLinear(c.HiddenSize, _kvHeads * _headDim, c.AttentionBias, device, dtype);
        _o = new LoraLinear(_heads * _headDim, c.HiddenSize, c.AttentionBias, device, dtype);
        _qNorm = new RmsNorm(_headDim, c.RmsNormEps, device, dtype);
        _kNorm = new RmsNorm(_headDim, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>
    /// x [B, T, H] at positions [B, T] → [B, T, H]. Without a cache: causal attention over the T positions given,
    /// or, with <paramref name="mask"/> [B, 1, T, T] (true = may attend), that mask (padding and causality both).
    /// With a cache: this layer's keys and values for the new positions are written into it at their positions,
    /// and the queries attend to every cached position ≤ their own (per row).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor positions, (Tensor cos, Tensor sin) rope, KvCache? cache, int layer, Tensor? mask = null)
    {
        var (b, t) = (x.shape[0], x.shape[1]);
        var q = _qNorm.forward(_q.forward(x).view(b, t, _heads, _headDim));   // [B, T, Q, D]
        var k = _kNorm.forward(_k.forward(x).view(b, t, _kvHeads, _headDim)); // [B, T, K, D]
        var v = _v.forward(x).view(b, t, _kvHeads, _headDim);                 // [B, T, K, D]
        q = Rotary.Apply(q, rope.cos, rope.sin);
        k = Rotary.Apply(k, rope.cos, rope.sin);

        Tensor keys, values;
        bool causal;
        if (cache is null)
        {
            (keys, values, causal) = (k, v, mask is null);                    // mask: [B, 1, T, T], padding and causality
        }
        else
        {
            (keys, values) = cache.Write(layer, positions, k, v);              // [B, S, K, D], S = cached span
            mask = cache.Mask!;                                                // [B, 1, T, S]
            causal = false;
        }
        var output = GroupedAttention(q, keys, values, mask, causal);          // [B, T, Q, D]
        return _o.forward(output.reshape(b, t, _heads * _headDim));            // [B, T, H]
    }

    /// <summary>
    /// softmax(q kᵀ/√D) v with K key/value heads shared by groups of G = Q/K query heads, without repeating k and v:
    /// the G query heads of a group are folded into the query-length dimension.
    /// </summary>
    Tensor GroupedAttention(Tensor q, Tensor k, Tensor v, Tensor? mask, bool causal)
    {
        var (b, t, s) = (q.shape[0], q.shape[1], k.shape[1]);
        var g = _heads / _kvHeads;
        var qg = q.view(b, t, _kvHeads, g, _headDim).permute(0, 2, 3, 1, 4).reshape(b, _kvHeads, g * t, _headDim); // [B, K, G·T, D]
        var kt = k.permute(0, 2, 1, 3);                                                                          // [B, K, S, D]
        var vt = v.permute(0, 2, 1, 3);                                                                          // [B, K, S, D]
        Tensor? groupMask = null;
        if (causal)
        {
            // Causal over T within each folded group: query i·T + τ may see keys ≤ τ.
            var tau = Scalars.Range(t, q.device).repeat(g);                                                       // [G·T]
            groupMask = (Scalars.Range(s, q.device).unsqueeze(0) <= tau.unsqueeze(1)).view(1, 1, g * t, s);      // [1, 1, G·T, S]
        }
        else if (mask is not null)
            groupMask = mask.unsqueeze(2).expand(b, 1, g, t, s).reshape(b, 1, g * t, s);                          // [B, 1, G·T, S]
        var o = nn.functional.scaled_dot_product_attention(qg, kt, vt, groupMask);                               // [B, K, G·T, D]
        return o.view(b, _kvHeads, g, t, _headDim).permute(0, 3, 1, 2, 4).reshape(b, t, _heads, _headDim);       // [B, T, Q, D]
    }

    /// <summary>The projections, for LoRA.</summary>
    public IEnumerable<(string name, LoraLinear layer)> Projections() =>
        new[] { ("q_proj", _q), ("k_proj", _k), ("v_proj", _v), ("o_proj", _o) };
}

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) · up(x)).</summary>
public sealed class Qwen3Mlp : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "gate_proj")] readonly LoraLinear _gate;
    [ComponentName(Name = "up_proj")] readonly LoraLinear _up;
    [ComponentName(Name = "down_proj")] readonly LoraLinear _down;

    /// <summary>Layers sized from the configuration.</summary>
    public Qwen3Mlp(Qwen3Config c, Device? device, ScalarType? dtype) : base(nameof(Qwen3Mlp))
    {
        _gate = new LoraLinear(c.HiddenSize, c.IntermediateSize, false, device, dtype);
        _up = new LoraLinear(c.HiddenSize, c.IntermediateSize, false, device, dtype);
        _down = new LoraLinear(c.IntermediateSize, c.HiddenSize, false, device, dtype);
        RegisterComponents();
    }

    /// <summary>x [B, T, H] → [B, T, H].</summary>
    public override Tensor forward(Tensor x) =>
        _down.forward(nn.functional.silu(_gate.forward(x)) * _up.forward(x)); // [B, T, I] → [B, T, H]

    /// <summary>The projections, for LoRA.</summary>
    public IEnumerable<(string name, LoraLinear layer)> Projections() =>
        new[] { ("gate_proj", _gate), ("up_proj", _up), ("down_proj", _down) };
}

/// <summary>One decoder layer: pre-norm attention and pre-norm MLP, each with a residual connection.</summary>
public sealed class Qwen3DecoderLayer : nn.Module
{
    [ComponentName(Name = "self_attn")] readonly Qwen3Attention _attention;
    [ComponentName(Name = "mlp")] readonly Qwen3Mlp _mlp;
    [ComponentName(Name = "input_layernorm")] readonly RmsNorm _inputNorm;
    [ComponentName(Name = "post_attention_layernorm")] readonly RmsNorm _postAttentionNorm;

    /// <summary>Layers sized from the configuration.</summary>
    public Qwen3DecoderLayer(Qwen3Config c, Device? device, ScalarType? dtype) : base(nameof(Qwen3DecoderLayer))
    {
        _attention = new Qwen3Attention(c, device, dtype);
        _mlp = new Qwen3Mlp(c, device, dtype);
        _inputNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        _postAttentionNorm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        RegisterComponents();
    }

    /// <summary>x [B, T, H] → [B, T, H]; <paramref name="mask"/> as <see cref="Qwen3Attention.Forward"/> takes it.</summary>
    public Tensor Forward(Tensor x, Tensor positions, (Tensor cos, Tensor sin) rope, KvCache? cache, int layer, Tensor? mask = null)
    {
        x = x.add(_attention.Forward(_inputNorm.forward(x), positions, rope, cache, layer, mask), Scalars.One);
        return x.add(_mlp.forward(_postAttentionNorm.forward(x)), Scalars.One);
    }

    /// <summary>Every linear layer with its path inside the layer (<c>self_attn.q_proj</c>, <c>mlp.up_proj</c>, …), for LoRA.</summary>
    public IEnumerable<(string name, LoraLinear layer)> Projections() =>
        _attention.Projections().Select(p => ("self_attn." + p.name, p.layer))
            .Concat(_mlp.Projections().Select(p => ("mlp." + p.name, p.layer)));
}

/// <summary>The decoder stack without the output layer (Hugging Face's <c>Qwen3Model</c>, prefix <c>model.</c>).</summary>
public sealed class Qwen3Model : nn.Module
{
    [ComponentName(Name = "embed_tokens")] readonly Embedding _embed;
    [ComponentName(Name = "layers")] readonly ModuleList<Qwen3DecoderLayer> _layers;
    [ComponentName(Name = "norm")] readonly RmsNorm _norm;
    readonly Rotary _rotary;

    /// <summary>Layers sized from the configuration.</summary>
    public Qwen3Model(Qwen3Config c, Device? device, ScalarType? dtype) : base(nameof(Qwen3Model))
    {
        _embed = nn.Embedding(c.VocabSize, c.HiddenSize, device: device, dtype: dtype);
        _layers = new ModuleList<Qwen3DecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new Qwen3DecoderLayer(c, device, dtype)).ToArray());
        _norm = new RmsNorm(c.HiddenSize, c.RmsNormEps, device, dtype);
        _rotary = new Rotary(c.HeadDim, c.RopeTheta, device);
        RegisterComponents();
    }

    /// <summary>The token embedding [V, H] (also the output weight when tied).</summary>
    public Parameter EmbeddingWeight => _embed.weight!;

    /// <summary>The decoder layers.</summary>
    public IList<Qwen3DecoderLayer> Layers => _layers;

    /// <summary>
    /// ids [B, T] at positions [B, T] → final-norm hidden states [B, T, H]. <paramref name="attentionMask"/> [B, T]
    /// (true or 1 = a real token), without a cache: query i attends to keys j ≤ i that are real tokens, and always to
    /// itself (so a padding query, whose earlier keys may all be padding, has a defined output, as transformers'
    /// SDPA path unmasks fully masked rows).
    /// </summary>
    public Tensor Forward(Tensor ids, Tensor positions, KvCache? cache, Tensor? attentionMask = null)
    {
        var x = _embed.forward(ids);                                       // [B, T, H]
        var rope = _rotary.Tables(positions, x.dtype);                     // [B, T, 1, D] each
        Tensor? mask = null;
        if (attentionMask is not null)
        {
            var t = ids.shape[1];
            var real = attentionMask.to(ScalarType.Bool);                                                  // [B, T]
            var range = Scalars.Range(t, ids.device);                                                      // [T]
            var causal = range.unsqueeze(0) <= range.unsqueeze(1);                                         // [T, T]: j ≤ i
            var self = range.unsqueeze(0) == range.unsqueeze(1);                                           // [T, T]: j = i
            mask = (causal.unsqueeze(0) & real.unsqueeze(1) | self.unsqueeze(0)).unsqueeze(1);            // [B, 1, T, T]
        }
        for (var i = 0; i < _layers.Count; i++)
            x = _layers[i].Forward(x, positions, rope, cache, i, mask);
        return _norm.forward(x);
    }
}

/// <summary>
/// Qwen3 for causal language modelling: the decoder and its output layer (tied to the embedding when the
/// configuration says so; a tied checkpoint has no <c>lm_head.weight</c>).
/// </summary>
public sealed class Qwen3ForCausalLM : nn.Module
{
    [ComponentName(Name = "model")] readonly Qwen3Model _model;
    [ComponentName(Name = "lm_head")] readonly LoraLinear? _lmHead;

    /// <summary>A model with uninitialised weights (load a checkpoint, or call <see cref="InitialiseRandom"/>).</summary>
    public Qwen3ForCausalLM(Qwen3Config config, Device? device = null, ScalarType? dtype = null) : base(nameof(Qwen3ForCausalLM))
    {
        Config = config;
        _model = new Qwen3Model(config, device, dtype);
        if (!config.TieWordEmbeddings)
            _lmHead = new LoraLinear(config.HiddenSize, config.VocabSize, false, device, dtype);
        RegisterComponents();
    }

    /// <summary>The configuration the model was built from.</summary>
    public Qwen3Config Config { get; }

    /// <summary>The decoder stack.</summary>
    public Qwen3Model Decoder => _model;

    /// <summary>The output projection [V, H]: lm_head.weight, or the embedding when tied.</summary>
    public Tensor OutputWeight => _lmHead?.Weight ?? _model.EmbeddingWeight;

    /// <summary>
    /// ids [B, T] at positions [B, T] → hidden states [B, T, H]. Without a cache the forward attends causally over the
    /// T tokens given, so a row with padding on the left needs <paramref name="attentionMask"/> [B, T] (1 = real
    /// token; its positions then default to the count of real tokens before each, as transformers derives them);
    /// without a mask, positions other than 0 … T−1 in every row (the sign of left padding or an offset prompt) are
    /// refused rather than attended wrongly. Right padding needs no mask: real tokens never see the padding after them.
    /// With a cache, the cache's own mask applies and <paramref name="attentionMask"/> must be null.
    /// </summary>
    public Tensor Hidden(Tensor ids, Tensor? positions = null, KvCache? cache = null, Tensor? attentionMask = null)
    {
        if (ids.dim() != 2) throw new ArgumentException($"ids must be [B, T], got shape [{string.Join(", ", ids.shape)}]", nameof(ids));
        var (b, t) = (ids.shape[0], ids.shape[1]);
        if (attentionMask is not null)
        {
            if (cache is not null) throw new ArgumentException("attentionMask is for the forward without a cache; a KV cache carries its own mask", nameof(attentionMask));
            if (!attentionMask.shape.SequenceEqual(ids.shape))
                throw new ArgumentException($"attentionMask must be [B, T] = [{b}, {t}] like ids, got [{string.Join(", ", attentionMask.shape)}]", nameof(attentionMask));
            positions ??= attentionMask.to(ScalarType.Int64).cumsum(1).sub(Scalars.One).clamp_min(Scalars.Zero);   // [B, T]
        }
        else if (cache is null && positions is not null)
        {
            if (!positions.shape.SequenceEqual(ids.shape))
                throw new ArgumentException($"positions must be [B, T] = [{b}, {t}] like ids, got [{string.Join(", ", positions.shape)}]", nameof(positions));
            using var expected = Scalars.Range(t, positions.device).unsqueeze(0);                             // [1, T]
            if (!positions.to(ScalarType.Int64).eq(expected).all().item<bool>())
                throw new ArgumentException("without a KV cache the forward attends causally over all T tokens, so positions must be 0 … T−1 in every row; " +
                                            "for left-padded rows pass attentionMask (or use the KV-cache path)", nameof(positions));
        }
        positions ??= Scalars.Range(t, ids.device).unsqueeze(0).expand(b, -1);
        return _model.Forward(ids, positions, cache, attentionMask);
    }

    /// <summary>
    /// hidden [..., H] → logits [..., V]. A decode step's few rows on the CPU without autograd take
    /// <see cref="RowDotProduct"/>; everything else libtorch's product.
    /// </summary>
    public Tensor Logits(Tensor hidden)
    {
        var weight = _lmHead is null ? _model.EmbeddingWeight : _lmHead.HasAdapter ? null : _lmHead.Weight;
        if (weight is not null && RowDotProduct.Applies(hidden, weight)) return RowDotProduct.Compute(hidden, weight);
        return _lmHead is null ? hidden.matmul(_model.EmbeddingWeight.t()) : _lmHead.forward(hidden);
    }

    /// <summary>ids [B, T] → logits [B, T, V] (<see cref="Hidden"/> for positions, cache and mask).</summary>
    public Tensor Forward(Tensor ids, Tensor? positions = null, KvCache? cache = null, Tensor? attentionMask = null) =>
        Logits(Hidden(ids, positions, cache, attentionMask));

    /// <summary>Every LoRA-capable linear layer with its Hugging Face module path (e.g. <c>model.layers.0.self_attn.q_proj</c>).</summary>
    public IEnumerable<(string path, LoraLinear layer)> LinearLayers()
    {
        for (var i = 0; i < _model.Layers.Count; i++)
            foreach (var (name, layer) in _model.Layers[i].Projections())
                yield return ($"model.layers.{i}.{name}", layer);
    }

    /// <summary>Switches every LoRA adapter on or off (off: the base model, e.g. OPSD's teacher).</summary>
    public void SetAdaptersEnabled(bool enabled)
    {
        foreach (var (_, layer) in LinearLayers()) layer.AdapterEnabled = enabled;
    }

    /// <summary>
    /// Random weights as Hugging Face initialises Qwen3 (normal(0, initializer_range) for linear and embedding
    /// weights, ones for norms), from a seeded generator: tiny test models are reproducible.
    /// </summary>
    public void InitialiseRandom(long seed, double std = 0.02)
    {
        using var generator = new Generator((ulong)seed);
        using var deviation = std.ToScalar();
        using (no_grad())
            foreach (var (name, p) in named_parameters())
            {
                using var scope = NewDisposeScope();   // holds the draw while it is scaled, cast and copied
                if (name.EndsWith("norm.weight")) p.fill_(Scalars.One);
                else if (name.EndsWith(".bias")) p.zero_();
                else p.copy_(randn(p.shape, generator: generator).mul_(deviation).to(p.dtype));    // N(0, std²)
            }
    }
}
