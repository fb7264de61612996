using Trd.Runtime.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace Trd.Runtime.Training;

/// <summary>AdamW's constants (paper App. C.8: β1 0.9, β2 0.999, ε 1e-8, weight decay 0.005).</summary>
public sealed record AdamWOptions(double Beta1 = 0.9, double Beta2 = 0.999, double Epsilon = 1e-8, double WeightDecay = 0.005);

/// <summary>
/// AdamW (Loshchilov and Hutter) with its state in the open: the moments are named after their parameters, so a
/// checkpoint is one safetensors file and a resumed run continues bit-identically. The update is PyTorch's
/// <c>torch.optim.AdamW</c> (decoupled decay p ← p(1 − lr·λ), bias-corrected moments, ε added after the square
/// root), which the tests hold it to. Weight decay applies to matrices only (no decay on norms and biases, as
/// Hugging Face's trainer does); the moments are float32 whatever the parameters' dtype.
/// A parameter of a 16-bit dtype (bfloat16, float16) is stepped through a float32 master copy: the update and the
/// decay apply to the master, which is then rounded into the parameter. Without it an update below the weight's
/// spacing (bfloat16: 2⁻⁸ of its value; an Adam step at lr 5e-6 moves a weight of 0.02 by 1/4000 of it) is rounded
/// away and the model never moves. The masters are checkpointed with the moments ("{name}.master").
/// </summary>
public sealed class AdamW : IDisposable
{
    readonly (string Name, Parameter Parameter)[] _parameters;
    readonly Dictionary<string, (Tensor M, Tensor V)> _state = new(StringComparer.Ordinal);
    readonly Dictionary<string, Tensor> _masters = new(StringComparer.Ordinal);

    /// <summary>An optimiser over named trainable parameters.</summary>
    public AdamW(IEnumerable<(string name, Parameter parameter)> parameters, AdamWOptions options)
    {
        _parameters = parameters.Select(p => (p.name, p.parameter)).ToArray();
        if (_parameters.Length == 0) throw new ArgumentException("no trainable parameters", nameof(parameters));
        var duplicate = _parameters.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"parameter '{duplicate.Key}' is given twice", nameof(parameters));
        Options = options;
        using var _ = no_grad();
        using var scope = NewDisposeScope();   // every tensor below is held by the scope while libtorch reads it
        foreach (var (name, p) in _parameters)
            if (NeedsMaster(p.dtype)) _masters[name] = p.detach().to(ScalarType.Float32).DetachFromDisposeScope();
    }

    /// <summary>Whether parameters of this dtype are stepped through a float32 master copy (16-bit floating types).</summary>
    public static bool NeedsMaster(ScalarType dtype) => dtype is ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>The float32 master copy of a 16-bit parameter, or null for a parameter stepped in place.</summary>
    public Tensor? Master(string name) => _masters.GetValueOrDefault(name);

    /// <summary>The constants.</summary>
    public AdamWOptions Options { get; }

    /// <summary>Updates taken so far (t in the bias corrections is Steps after the next update).</summary>
    public long Steps { get; private set; }

    /// <summary>The parameters, by name.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters => _parameters;

    /// <summary>√(Σ ‖g‖²) over every parameter with a gradient (float64 accumulation).</summary>
    public double GradientNorm()
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        double sum = 0;
        foreach (var (_, p) in _parameters)
            if (p.grad is { } g) sum += g.to(ScalarType.Float64).pow(Scalars.Two).sum().item<double>();
        return Math.Sqrt(sum);
    }

    /// <summary>Scales every gradient by min(1, max / norm) (global norm clipping); returns the norm before clipping.</summary>
    public double ClipGradients(double maxNorm)
    {
        var norm = GradientNorm();
        if (maxNorm > 0 && norm > maxNorm && double.IsFinite(norm))
        {
            using var factor = (maxNorm / (norm + 1e-6)).ToScalar();
            using var _ = no_grad();
            using var scope = NewDisposeScope();   // holds each p.grad wrapper while mul_ runs
            foreach (var (_, p) in _parameters)
                p.grad?.mul_(factor);
        }
        return norm;
    }

    /// <summary>One update at learning rate <paramref name="lr"/>; parameters without a gradient are left alone.</summary>
    public void Step(double lr)
    {
        Steps++;
        var (b1, b2, eps, wd) = (Options.Beta1, Options.Beta2, Options.Epsilon, Options.WeightDecay);
        var correction1 = 1 - Math.Pow(b1, Steps);
        var correction2 = 1 - Math.Pow(b2, Steps);
        // Held for the whole step (Scalars): β₁, 1 − β₁, β₂, 1 − β₂, √c₂, ε, lr/c₁, 1 − lr·wd.
        using Scalar beta1 = b1.ToScalar(), oneMinusBeta1 = (1 - b1).ToScalar(), beta2 = b2.ToScalar(),
            oneMinusBeta2 = (1 - b2).ToScalar(), sqrtCorrection2 = Math.Sqrt(correction2).ToScalar(),
            epsilon = eps.ToScalar(), stepSize = (lr / correction1).ToScalar(), decay = (1 - lr * wd).ToScalar();
        using var _ = no_grad();
        foreach (var (name, p) in _parameters)
        {
            using var scope = NewDisposeScope();   // before p.grad: the scope holds its wrapper while libtorch reads it
            if (p.grad is not { } grad) continue;
            var g = grad.to(ScalarType.Float32);                                                     // same shape as p
            if (!_state.TryGetValue(name, out var moments))
            {
                moments = (zeros_like(g).DetachFromDisposeScope(), zeros_like(g).DetachFromDisposeScope());
                _state[name] = moments;
            }
            var (m, v) = moments;
            m.mul_(beta1).add_(g, alpha: oneMinusBeta1);
            v.mul_(beta2).addcmul_(g, g, value: oneMinusBeta2);
            var denominator = v.sqrt().div_(sqrtCorrection2).add_(epsilon, Scalars.One);
            var update = m.div(denominator).mul_(stepSize);                                           // float32
            var target = _masters.GetValueOrDefault(name) ?? p;                                       // the float32 master, else p
            if (wd > 0 && p.dim() >= 2) target.mul_(decay);
            target.sub_(update.to(target.dtype));
            if (!ReferenceEquals(target, p)) p.copy_(target);                                        // rounded into the 16-bit weight
        }
    }

    /// <summary>Zeroes (drops) every gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in _parameters)
            if (p.grad is { } g) { p.grad = null; g.Dispose(); }
    }

    /// <summary>
    /// The moments and master copies as named tensors ("{name}.exp_avg", "{name}.exp_avg_sq", "{name}.master"), for
    /// a safetensors checkpoint.
    /// </summary>
    public Dictionary<string, Tensor> StateTensors()
    {
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, (m, v)) in _state)
        {
            tensors[$"{name}.exp_avg"] = m;
            tensors[$"{name}.exp_avg_sq"] = v;
        }
        foreach (var (name, master) in _masters) tensors[$"{name}{MasterSuffix}"] = master;
        return tensors;
    }

    const string MasterSuffix = ".master";

    /// <summary>Writes the moments to <paramref name="path"/> (safetensors) with the step count in its metadata.</summary>
    public void Save(string path) =>
        SafeTensors.Save(path, StateTensors(), new Dictionary<string, string> { ["steps"] = Steps.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    /// <summary>
    /// Restores moments, master copies and step count written by <see cref="Save"/>; a moment for an unknown parameter
    /// or of the wrong shape is an error. A 16-bit parameter without a saved master (a checkpoint written by a float32
    /// run) keeps the master taken from its current value.
    /// </summary>
    public void Load(string path)
    {
        var file = SafeTensors.Open(path);
        if (!file.Metadata.TryGetValue("steps", out var steps) || !long.TryParse(steps, out var n) || n < 0)
            throw new CheckpointException(path, null, "the optimiser state has no valid 'steps' metadata");
        var byName = _parameters.ToDictionary(p => p.Name, p => p.Parameter, StringComparer.Ordinal);
        foreach (var (m, v) in _state.Values) { m.Dispose(); v.Dispose(); }
        _state.Clear();
        foreach (var key in file.Names)
        {
            if (key.EndsWith(MasterSuffix, StringComparison.Ordinal))
            {
                var owner = key[..^MasterSuffix.Length];
                if (!byName.TryGetValue(owner, out var q)) throw new CheckpointException(path, key, $"no trainable parameter '{owner}'");
                if (!_masters.TryGetValue(owner, out var master))
                    throw new CheckpointException(path, key, $"a float32 master copy, but '{owner}' is {q.dtype} and is stepped in place");
                using var loaded = file.Load(key, master.device, ScalarType.Float32);
                if (!loaded.shape.SequenceEqual(master.shape))
                    throw new CheckpointException(path, key, $"shape [{string.Join(", ", loaded.shape)}] but the parameter is [{string.Join(", ", master.shape)}]");
                using (no_grad()) { master.copy_(loaded); q.copy_(loaded); }
                continue;
            }
            var name = key.EndsWith(".exp_avg_sq", StringComparison.Ordinal) ? key[..^".exp_avg_sq".Length]
                : key.EndsWith(".exp_avg", StringComparison.Ordinal) ? key[..^".exp_avg".Length]
                : throw new CheckpointException(path, key, "not an optimiser moment (expected '<parameter>.exp_avg' or '.exp_avg_sq')");
            if (!byName.TryGetValue(name, out var p)) throw new CheckpointException(path, key, $"no trainable parameter '{name}'");
            var t = file.Load(key, p.device, ScalarType.Float32);
            if (!t.shape.SequenceEqual(p.shape))
                throw new CheckpointException(path, key, $"shape [{string.Join(", ", t.shape)}] but the parameter is [{string.Join(", ", p.shape)}]");
            t.DetachFromDisposeScope();
            var current = _state.TryGetValue(name, out var s) ? s : (M: null!, V: null!);
            _state[name] = key.EndsWith(".exp_avg_sq", StringComparison.Ordinal) ? (current.M, t) : (t, current.V);
        }
        foreach (var (name, (m, v)) in _state)
            if (m is null || v is null) throw new CheckpointException(path, name, "only one of the two moments is present");
        Steps = n;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var (m, v) in _state.Values) { m.Dispose(); v.Dispose(); }
        _state.Clear();
        foreach (var master in _masters.Values) master.Dispose();
        _masters.Clear();
    }
}
