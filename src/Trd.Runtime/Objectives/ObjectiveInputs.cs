using Trd.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Trd.Runtime.Objectives;

/// <summary>
/// The checks every executor entry point runs before touching a tensor: shapes, vocabulary sizes, devices,
/// dtypes, the mask, the targets and the recipe's constants. Each failure is an <see cref="ArgumentException"/>
/// naming the argument and the values involved (TorchSharp aborts the process on a mismatched matmul, so
/// shapes are checked here, first).
/// </summary>
internal static class ObjectiveInputs
{
    static readonly ScalarType[] FloatTypes = { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Float64 };

    internal static void CheckRecipe(Recipe recipe, long vocabularySize, ObjectiveOptions options)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        ArgumentNullException.ThrowIfNull(options);
        Trd.Core.RecipeModule.Validate(recipe);
        Trd.Core.SupportModule.Check(recipe.Support, checked((int)vocabularySize));
        if (options.ChunkSize < 1)
            throw new ArgumentException($"ChunkSize must be ≥ 1, got {options.ChunkSize}", nameof(options));
        if (options.ComputeType is not (ScalarType.Float32 or ScalarType.Float64))
            throw new ArgumentException($"ComputeType must be Float32 or Float64, got {options.ComputeType}", nameof(options));
        if (options.Normaliser < 0 || double.IsNaN(options.Normaliser) || double.IsInfinity(options.Normaliser))
            throw new ArgumentException($"Normaliser must be a finite number ≥ 0 (0: this call's token count), got {options.Normaliser}", nameof(options));
        if (recipe.Switch is Switch.Outliers outliers) Trd.Core.SupportModule.Check(outliers.Support, checked((int)vocabularySize));
        if (recipe.IsShaped && options.Shaping is null)
            throw new ArgumentException($"recipe '{recipe.Name}' is shaped ({recipe}): it needs the step's plan, ObjectiveOptions.Shaping (PositionShaping.FromPlan)", nameof(options));
        if (!recipe.IsShaped && options.Shaping is not null)
            throw new ArgumentException($"ObjectiveOptions.Shaping is given but recipe '{recipe.Name}' has no shaping primitive", nameof(options));
        if (options.EpistemicTokenIds is { } ids)
            foreach (var id in ids)
                if (id < 0 || id >= vocabularySize)
                    throw new ArgumentException($"epistemic token id {id} is outside the vocabulary (V = {vocabularySize})", nameof(options));
    }

    internal static void CheckFloat(Tensor x, string name)
    {
        if (!FloatTypes.Contains(x.dtype))
            throw new ArgumentException($"{name} must be a floating-point tensor (float32, bfloat16, float16 or float64), got {x.dtype}", name);
    }

    internal static void CheckMatrix(Tensor x, string name, string shape)
    {
        if (x.dim() != 2)
            throw new ArgumentException($"{name} must be 2-D {shape}, got shape [{string.Join(", ", x.shape)}]", name);
        CheckFloat(x, name);
    }

    /// <summary>Student and teacher logits [N, V]: matrices of floats on one device, with the same N and V.</summary>
    internal static void CheckLogitPair(Tensor studentLogits, Tensor teacherLogits)
    {
        ArgumentNullException.ThrowIfNull(studentLogits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        CheckMatrix(studentLogits, nameof(studentLogits), "[N, V]");
        CheckMatrix(teacherLogits, nameof(teacherLogits), "[N, V]");
        CheckSameDevice(studentLogits, nameof(studentLogits), teacherLogits, nameof(teacherLogits));
        if (studentLogits.shape[0] != teacherLogits.shape[0])
            throw new ArgumentException($"student has {studentLogits.shape[0]} positions but teacher has {teacherLogits.shape[0]}", nameof(teacherLogits));
        CheckVocabulary(studentLogits.shape[1], teacherLogits.shape[1]);
    }

    /// <summary>
    /// The fused inputs: hidden states [N, H] with output weight [V, H] per side, one device, one N and V, each side's
    /// hidden size and dtype matching its weight — all checked before any matmul.
    /// </summary>
    internal static void CheckFusedPair(Tensor studentHidden, Tensor studentWeight, Tensor teacherHidden, Tensor teacherWeight)
    {
        ArgumentNullException.ThrowIfNull(studentHidden);
        ArgumentNullException.ThrowIfNull(studentWeight);
        ArgumentNullException.ThrowIfNull(teacherHidden);
        ArgumentNullException.ThrowIfNull(teacherWeight);
        CheckMatrix(studentHidden, nameof(studentHidden), "[N, H]");
        CheckMatrix(studentWeight, nameof(studentWeight), "[V, H]");
        CheckMatrix(teacherHidden, nameof(teacherHidden), "[N, H_T]");
        CheckMatrix(teacherWeight, nameof(teacherWeight), "[V, H_T]");
        CheckSameDevice(studentHidden, nameof(studentHidden), studentWeight, nameof(studentWeight));
        CheckSameDevice(studentHidden, nameof(studentHidden), teacherHidden, nameof(teacherHidden));
        CheckSameDevice(studentHidden, nameof(studentHidden), teacherWeight, nameof(teacherWeight));
        if (studentHidden.shape[1] != studentWeight.shape[1])
            throw new ArgumentException($"student hidden size H = {studentHidden.shape[1]} but its output weight is [{studentWeight.shape[0]}, {studentWeight.shape[1]}] (expected [V, H])", nameof(studentWeight));
        if (teacherHidden.shape[1] != teacherWeight.shape[1])
            throw new ArgumentException($"teacher hidden size H_T = {teacherHidden.shape[1]} but its output weight is [{teacherWeight.shape[0]}, {teacherWeight.shape[1]}] (expected [V, H_T])", nameof(teacherWeight));
        if (studentHidden.shape[0] != teacherHidden.shape[0])
            throw new ArgumentException($"student has {studentHidden.shape[0]} positions but teacher has {teacherHidden.shape[0]}", nameof(teacherHidden));
        if (studentHidden.dtype != studentWeight.dtype)
            throw new ArgumentException($"student hidden states are {studentHidden.dtype} but its output weight is {studentWeight.dtype}", nameof(studentWeight));
        if (teacherHidden.dtype != teacherWeight.dtype)
            throw new ArgumentException($"teacher hidden states are {teacherHidden.dtype} but its output weight is {teacherWeight.dtype}", nameof(teacherWeight));
        CheckVocabulary(studentWeight.shape[0], teacherWeight.shape[0]);
    }

    internal static void CheckVocabulary(long student, long teacher)
    {
        if (student != teacher)
            throw new ArgumentException(
                $"vocabulary sizes differ: student V = {student}, teacher V = {teacher}. Models of one family can pad their " +
                "output layer differently (Qwen3: 151,936 against 152,064); slice both to the shared tokenizer's vocabulary first.",
                "teacher");
    }

    internal static void CheckSameDevice(Tensor a, string aName, Tensor b, string bName)
    {
        if (a.device.type != b.device.type || a.device.index != b.device.index)
            throw new ArgumentException($"{aName} is on {a.device} but {bName} is on {b.device}", bName);
    }

    /// <summary>mask: [N], any numeric dtype, selecting at least one position. Returns Σ mask.</summary>
    internal static double CheckMask(Tensor mask, long n, Tensor like)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (mask.dim() != 1 || mask.shape[0] != n)
            throw new ArgumentException($"mask must be [N] = [{n}], got shape [{string.Join(", ", mask.shape)}]", nameof(mask));
        CheckSameDevice(like, "the inputs", mask, nameof(mask));
        double tokens;
        using (no_grad())
            tokens = mask.to(ScalarType.Float64).sum().item<double>();
        if (!(tokens > 0))
            throw new ArgumentException("the mask selects no position (empty mask): there is nothing to distil on", nameof(mask));
        return tokens;
    }

    /// <summary>targets: [N] int64 in [0, V); required by the sampled estimators and by TokenLogProbs.</summary>
    internal static void CheckTargets(Tensor? targets, long n, long v, bool required, string why, Tensor like)
    {
        if (targets is null)
        {
            if (required) throw new ArgumentException($"{why} needs the trajectory tokens (targets [N])", nameof(targets));
            return;
        }
        if (targets.dim() != 1 || targets.shape[0] != n)
            throw new ArgumentException($"targets must be [N] = [{n}], got shape [{string.Join(", ", targets.shape)}]", nameof(targets));
        if (targets.dtype != ScalarType.Int64)
            throw new ArgumentException($"targets must be int64 token ids, got {targets.dtype}", nameof(targets));
        CheckSameDevice(like, "the inputs", targets, nameof(targets));
        long min, max;
        using (no_grad())
        {
            min = targets.min().item<long>();
            max = targets.max().item<long>();
        }
        if (min < 0 || max >= v)
            throw new ArgumentException($"targets hold token ids in [{min}, {max}], outside the vocabulary [0, {v})", nameof(targets));
    }

    /// <summary>Rejects NaN, +∞ and all −∞ rows in one chunk of logits [C, V]; start is the chunk's first position.</summary>
    internal static void CheckLogitsChunk(Tensor logits, string name, long start)
    {
        using var scope = NewDisposeScope();
        var nan = logits.isnan().any(-1);                // [C]
        if (nan.any().item<bool>())
            throw new ArgumentException($"{name} contain NaN at position {start + nan.to(ScalarType.Int64).argmax().item<long>()}", name);
        var posInf = logits.isposinf().any(-1);          // [C]
        if (posInf.any().item<bool>())
            throw new ArgumentException($"{name} contain +inf at position {start + posInf.to(ScalarType.Int64).argmax().item<long>()}", name);
        var dead = logits.isneginf().all(-1);            // [C]
        if (dead.any().item<bool>())
            throw new ArgumentException($"{name} are -inf over the whole vocabulary at position {start + dead.to(ScalarType.Int64).argmax().item<long>()}", name);
    }
}
