using Trd.Runtime.Models;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Trd.Runtime.Lora;

/// <summary>
/// A linear layer y = x Wᵀ (+ b) that can carry a LoRA adapter (Hu et al. 2021): y += (α/r) · B A dropout(x),
/// with A [r, in] and B [out, r]. Parameter names follow Hugging Face and PEFT: <c>weight</c>, <c>bias</c>,
/// <c>lora_A.weight</c>, <c>lora_B.weight</c>. B starts at zero, so a fresh adapter leaves the output unchanged.
/// The adapter is float32 whatever the base weight's dtype (float64 over a float64 base), as PEFT keeps it
/// (<c>autocast_adapter_dtype</c>): an Adam update at a fine-tuning learning rate (~1e-6 of a weight) is far below
/// bfloat16's spacing (2⁻⁸ of the value) and would be rounded away. The forward casts the input up to the adapter's
/// dtype and the adapter's output back to the base's.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "weight")] readonly Parameter _weight;
    [ComponentName(Name = "bias")] readonly Parameter? _bias;
    [ComponentName(Name = "lora_A")] LoraFactor? _loraA;
    [ComponentName(Name = "lora_B")] LoraFactor? _loraB;
    double _scaling;
    double _dropout;

    /// <summary>A linear layer of the given sizes (weights uninitialised: they are loaded or initialised by the caller).</summary>
    public LoraLinear(long inFeatures, long outFeatures, bool bias = false, Device? device = null, ScalarType? dtype = null)
        : base(nameof(LoraLinear))
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        _weight = nn.Parameter(empty(outFeatures, inFeatures, dtype: dtype, device: device));
        if (bias) _bias = nn.Parameter(zeros(outFeatures, dtype: dtype, device: device));
        RegisterComponents();
    }

    /// <summary>Input features.</summary>
    public long InFeatures { get; }

    /// <summary>Output features.</summary>
    public long OutFeatures { get; }

    /// <summary>The base weight [out, in].</summary>
    public Parameter Weight => _weight;

    /// <summary>Whether an adapter is attached.</summary>
    public bool HasAdapter => _loraA is not null;

    /// <summary>When false, forward ignores the adapter (OPSD's teacher: the same backbone without its adapters).</summary>
    public bool AdapterEnabled { get; set; } = true;

    /// <summary>The adapter's A [r, in] and B [out, r], when attached.</summary>
    public (Parameter A, Parameter B)? Adapter => _loraA is null ? null : (_loraA.Weight, _loraB!.Weight);

    /// <summary>α / r.</summary>
    public double Scaling => _scaling;

    /// <summary>
    /// Attaches a rank-r adapter: A ~ Kaiming-uniform(a = √5) as PEFT initialises it, B = 0. The base weight is frozen.
    /// </summary>
    public void AttachAdapter(int rank, double alpha, double dropout, Generator? generator = null)
    {
        if (rank < 1) throw new ArgumentOutOfRangeException(nameof(rank), rank, "LoRA rank must be ≥ 1");
        if (dropout < 0 || dropout >= 1) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "LoRA dropout must lie in [0, 1)");
        if (HasAdapter) throw new InvalidOperationException("this layer already has a LoRA adapter");
        var device = _weight.device;
        using (no_grad())
        {
            // kaiming_uniform(a=√5) on [r, in]: bound = 1/√in
            var bound = 1.0 / Math.Sqrt(InFeatures);
            var dtype = Precision.AtLeastFloat32(_weight.dtype);                 // float32, float64 over a float64 base
            using var width = (2 * bound).ToScalar();
            using var low = (-bound).ToScalar();
            Tensor a;
            using (NewDisposeScope())   // holds the draw and its steps while libtorch reads them
                a = rand(new long[] { rank, InFeatures }, generator: generator, dtype: ScalarType.Float32, device: device)
                    .mul(width).add(low, Scalars.One).to(dtype).DetachFromDisposeScope(); // U(−bound, bound)
            _loraA = new LoraFactor(a);
            _loraB = new LoraFactor(zeros(OutFeatures, rank, dtype: dtype, device: device));
        }
        register_module("lora_A", _loraA);
        register_module("lora_B", _loraB);
        _scaling = alpha / rank;
        _dropout = dropout;
        _weight.requires_grad = false;
        if (_bias is not null) _bias.requires_grad = false;
    }

    /// <summary>Folds the adapter into the base weight (W += (α/r) B A) and removes it.</summary>
    public void MergeAdapter()
    {
        if (_loraA is null || _loraB is null) throw new InvalidOperationException("no LoRA adapter to merge");
        using (no_grad())
        using (NewDisposeScope())   // holds the casts and the product while libtorch reads them
        {
            var wide = Precision.AtLeastFloat32(_weight.dtype);
            using var scaling = _scaling.ToScalar();
            var delta = _loraB.Weight.to(wide).matmul(_loraA.Weight.to(wide)).mul(scaling); // [out, r]·[r, in]
            _weight.add_(delta.to(_weight.dtype), Scalars.One);
        }
        RemoveAdapter();
    }

    /// <summary>Removes the adapter without merging it.</summary>
    public void RemoveAdapter()
    {
        _loraA?.Dispose();
        _loraB?.Dispose();
        _loraA = null;
        _loraB = null;
        register_module("lora_A", null!); // TorchSharp: registering null removes the submodule
        register_module("lora_B", null!);
    }

    /// <summary>
    /// The generator of the adapter's dropout mask; null uses torch's global generator. A trainer sets its own, so
    /// that a step's masks depend on its seed alone, not on whatever else draws from the global generator.
    /// </summary>
    public Generator? DropoutGenerator { get; set; }

    /// <summary>x [..., in] → [..., out].</summary>
    public override Tensor forward(Tensor x)
    {
        var y = nn.functional.linear(x, _weight, _bias);                           // [..., out]
        if (_loraA is null || _loraB is null || !AdapterEnabled) return y;
        var wide = x.to(_loraA.Weight.dtype);                                      // [..., in], the adapter's dtype
        using var dropout = _dropout.ToScalar();
        using var keep = (1 - _dropout).ToScalar();
        using var scaling = _scaling.ToScalar();
        var h = !training || _dropout <= 0 ? wide
            : DropoutGenerator is null ? nn.functional.dropout(wide, _dropout, training: true)
            : wide.mul(rand(wide.shape, dtype: wide.dtype, device: wide.device, generator: DropoutGenerator).ge(dropout).to(wide.dtype)).div(keep); // [..., in]
        var update = nn.functional.linear(nn.functional.linear(h, _loraA.Weight), _loraB.Weight); // [..., r] → [..., out]
        return y.add(update.mul(scaling).to(y.dtype), Scalars.One);
    }
}

/// <summary>One LoRA factor: a module holding a single <c>weight</c>, so its parameter is named <c>lora_A.weight</c>.</summary>
public sealed class LoraFactor : nn.Module
{
    [ComponentName(Name = "weight")] readonly Parameter _weight;

    /// <summary>Wraps the initial value as a trainable parameter.</summary>
    public LoraFactor(Tensor initial) : base(nameof(LoraFactor))
    {
        _weight = nn.Parameter(initial);
        RegisterComponents();
    }

    /// <summary>The factor's weight.</summary>
    public Parameter Weight => _weight;
}
