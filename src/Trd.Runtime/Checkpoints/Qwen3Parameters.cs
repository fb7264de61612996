namespace Trd.Runtime.Checkpoints;

/// <summary>
/// The parameter names and shapes of a Qwen3ForCausalLM checkpoint as transformers writes them, from its
/// config: what a real Qwen3 directory holds and what a model built from the config must supply.
/// <code>
/// model.embed_tokens.weight                          [V, H]
/// model.layers.{i}.input_layernorm.weight            [H]
/// model.layers.{i}.self_attn.q_proj.weight           [n_q · D, H]     (+ .bias [n_q · D] with attention_bias)
/// model.layers.{i}.self_attn.k_proj.weight           [n_kv · D, H]    (+ .bias)
/// model.layers.{i}.self_attn.v_proj.weight           [n_kv · D, H]    (+ .bias)
/// model.layers.{i}.self_attn.o_proj.weight           [H, n_q · D]     (+ .bias [H])
/// model.layers.{i}.self_attn.q_norm.weight           [D]
/// model.layers.{i}.self_attn.k_norm.weight           [D]
/// model.layers.{i}.post_attention_layernorm.weight   [H]
/// model.layers.{i}.mlp.gate_proj.weight              [I, H]
/// model.layers.{i}.mlp.up_proj.weight                [I, H]
/// model.layers.{i}.mlp.down_proj.weight              [H, I]
/// model.norm.weight                                  [H]
/// lm_head.weight                                     [V, H]           (absent when tie_word_embeddings)
/// </code>
/// </summary>
public static class Qwen3Parameters
{
    /// <summary>The token embedding [V, H].</summary>
    public const string EmbedTokens = "model.embed_tokens.weight";

    /// <summary>The final RMSNorm's weight [H].</summary>
    public const string FinalNorm = "model.norm.weight";

    /// <summary>The LM head [V, H]; only stored when the embeddings are not tied.</summary>
    public const string LmHead = "lm_head.weight";

    /// <summary>A name inside decoder layer <paramref name="layer"/>: <c>model.layers.{layer}.{rest}</c>.</summary>
    public static string Layer(int layer, string rest) => $"model.layers.{layer}.{rest}";

    /// <summary>Every parameter's name and shape, in the order above (embedding, layers 0…L−1, norm, LM head).</summary>
    public static IReadOnlyList<KeyValuePair<string, long[]>> Ordered(Qwen3Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        long v = config.VocabSize, h = config.HiddenSize, i = config.IntermediateSize, d = config.HeadDim;
        long q = config.NumAttentionHeads * d, kv = config.NumKeyValueHeads * d;
        var result = new List<KeyValuePair<string, long[]>>();
        void Add(string name, params long[] shape) => result.Add(new(name, shape));

        Add(EmbedTokens, v, h);
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
        {
            string L(string rest) => Layer(layer, rest);
            Add(L("input_layernorm.weight"), h);
            Add(L("self_attn.q_proj.weight"), q, h);
            Add(L("self_attn.k_proj.weight"), kv, h);
            Add(L("self_attn.v_proj.weight"), kv, h);
            Add(L("self_attn.o_proj.weight"), h, q);
            if (config.AttentionBias)
            {
                Add(L("self_attn.q_proj.bias"), q);
                Add(L("self_attn.k_proj.bias"), kv);
                Add(L("self_attn.v_proj.bias"), kv);
                Add(L("self_attn.o_proj.bias"), h);
            }
            Add(L("self_attn.q_norm.weight"), d);
            Add(L("self_attn.k_norm.weight"), d);
            Add(L("post_attention_layernorm.weight"), h);
            Add(L("mlp.gate_proj.weight"), i, h);
            Add(L("mlp.up_proj.weight"), i, h);
            Add(L("mlp.down_proj.weight"), h, i);
        }
        Add(FinalNorm, h);
        if (!config.TieWordEmbeddings)
            Add(LmHead, v, h);
        return result;
    }

    /// <summary>Every parameter's name → shape.</summary>
    public static IReadOnlyDictionary<string, long[]> Shapes(Qwen3Config config) =>
        Ordered(config).ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);

    /// <summary>
    /// Names a checkpoint may hold that a model of this config does not load: lm_head.weight when the embeddings
    /// are tied (some exporters store the shared matrix twice; transformers ignores the copy).
    /// </summary>
    public static IReadOnlyList<string> Ignored(Qwen3Config config) =>
        config.TieWordEmbeddings ? [LmHead] : [];
}
