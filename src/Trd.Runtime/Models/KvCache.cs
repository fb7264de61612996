using Trd.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Models;

/// <summary>
/// A preallocated key/value cache, [layers, B, T_max, K, D] for keys and for values, filled in place: no growth
/// by concatenation. Each row keeps its own length; a row's token at position p is stored at index p, so rows of
/// different lengths share one tensor and a query at position p attends to the cached indices ≤ p of its row.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Tensor _keys, _values; // [L, B, T_max, K, D]
    long _span;

    /// <summary>An empty cache for a model's configuration.</summary>
    public KvCache(Qwen3Config config, long batch, long maxPositions, Device device, ScalarType dtype)
    {
        if (batch < 1 || maxPositions < 1)
            throw new ArgumentOutOfRangeException(nameof(maxPositions), $"a cache needs B ≥ 1 and T_max ≥ 1, got B = {batch}, T_max = {maxPositions}");
        if (maxPositions > config.MaxPositionEmbeddings)
            throw new ArgumentOutOfRangeException(nameof(maxPositions), $"T_max = {maxPositions} exceeds the model's max_position_embeddings = {config.MaxPositionEmbeddings}");
        var shape = new[] { config.NumHiddenLayers, batch, maxPositions, config.NumKeyValueHeads, config.HeadDim };
        // Owned by this object, not by whatever dispose scope is open: Dispose() frees them.
        _keys = zeros(shape, dtype: dtype, device: device).DetachFromDisposeScope();
        _values = zeros(shape, dtype: dtype, device: device).DetachFromDisposeScope();
        Batch = batch;
        MaxPositions = maxPositions;
    }

    /// <summary>Rows.</summary>
    public long Batch { get; }

    /// <summary>Positions each row can hold.</summary>
    public long MaxPositions { get; }

    /// <summary>The attention mask of the current step, [B, 1, T, S]: true where a query may attend.</summary>
    public Tensor? Mask { get; private set; }

    /// <summary>
    /// Prepares a forward step writing the given positions [B, T]: checks they fit and builds the mask
    /// (key index ≤ query position, per row). Call once per step, before the model's forward.
    /// </summary>
    public void BeginStep(Tensor positions)
    {
        if (positions.dim() != 2 || positions.shape[0] != Batch)
            throw new ArgumentException($"positions must be [B = {Batch}, T], got shape [{string.Join(", ", positions.shape)}]", nameof(positions));
        var last = positions.max().item<long>();
        if (last >= MaxPositions)
            throw new ArgumentException($"position {last} does not fit a cache of {MaxPositions} positions", nameof(positions));
        _span = last + 1;
        var keyIndex = Scalars.Range(_span, positions.device);                                   // [S]
        Mask = (keyIndex.view(1, 1, 1, _span) <= positions.unsqueeze(1).unsqueeze(-1));        // [B, 1, T, S]
    }

    /// <summary>
    /// Stores layer <paramref name="layer"/>'s keys and values k, v [B, T, K, D] at their positions [B, T], and returns
    /// the layer's cached keys and values over the step's span, [B, S, K, D] each.
    /// </summary>
    public (Tensor keys, Tensor values) Write(int layer, Tensor positions, Tensor k, Tensor v)
    {
        if (Mask is null) throw new InvalidOperationException("KvCache.BeginStep must be called before the forward step");
        var index = positions.view(positions.shape[0], positions.shape[1], 1, 1).expand(k.shape); // [B, T, K, D]
        var keys = _keys[layer];                                                                  // [B, T_max, K, D]
        var values = _values[layer];
        keys.scatter_(1, index, k);
        values.scatter_(1, index, v);
        return (keys.narrow(1, 0, _span), values.narrow(1, 0, _span));
    }

    /// <summary>
    /// Repeats every row n times in place of the cache (row r becomes rows r·n … r·n + n − 1): several samples
    /// per prompt share the prompt's prefill. Returns a new cache; this one is left as it was.
    /// </summary>
    public KvCache RepeatRows(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "n must be ≥ 1");
        // clone(): the copy must never alias this cache's storage, which its owner may dispose.
        return new KvCache(_keys.repeat_interleave(n, dim: 1).clone().DetachFromDisposeScope(),
            _values.repeat_interleave(n, dim: 1).clone().DetachFromDisposeScope(), Batch * n, MaxPositions);
    }

    KvCache(Tensor keys, Tensor values, long batch, long maxPositions)
    {
        _keys = keys;
        _values = values;
        Batch = batch;
        MaxPositions = maxPositions;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _keys.Dispose();
        _values.Dispose();
    }
}
