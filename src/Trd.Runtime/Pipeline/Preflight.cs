using Trd.Core;
using Trd.Runtime.Checkpoints;
using Trd.Runtime.Data;
using Trd.Runtime.Tokenization;

namespace Trd.Runtime.Pipeline;

/// <summary>The pipeline's commands, for what each will read.</summary>
[Flags]
public enum Stages
{
    /// <summary>Stage 1: problems and the student.</summary>
    Rollout = 1,
    /// <summary>Stage 2: the student, and under OPD the teacher.</summary>
    Refine = 2,
    /// <summary>Stage 3: the student, and under OPD the teacher.</summary>
    Train = 4,
    /// <summary>Evaluation: the student and the eval problem files.</summary>
    Eval = 8,
    /// <summary>Corpus analysis: nothing beyond the run's own files.</summary>
    Analyze = 16,
    /// <summary>Every stage.</summary>
    All = Rollout | Refine | Train | Eval | Analyze,
}

/// <summary>
/// Checks everything a command will read before its first stage starts and before anything is written (issue 15): the
/// problem files it needs parse, every model directory's config.json and tokenizer.json parse, a random model's shape
/// is sane, every model fits in this machine's memory, and an OPD teacher shares the student's tokenizer. Cheap next
/// to any stage: no weights are read. Throws a <see cref="ConfigException"/> (or the file's own exception) naming the
/// file, key or value.
/// </summary>
public static class Preflight
{
    /// <summary>Checks what <paramref name="stages"/> of <paramref name="config"/> (validated) will read.</summary>
    public static void Check(PipelineConfig config, Stages stages)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (stages.HasFlag(Stages.Rollout) && config.Corpus is null)
            Problems(config.Problems, "problems");
        if (stages.HasFlag(Stages.Eval))
            for (var i = 0; i < config.Eval.Problems.Length; i++) Problems(config.Eval.Problems[i], $"eval.problems[{i}]");
        var needsModels = (stages & ~Stages.Analyze) != 0;
        if (!needsModels) return;
        var student = Model(config.Student, "student");
        var teacherNeeded = config.Setting == Setting.Opd && (stages & (Stages.Refine | Stages.Train)) != 0;
        var teacher = teacherNeeded && config.Teacher is { } teacherSpec ? Model(teacherSpec, "teacher") : ((ITokenizer, Qwen3Config)?)null;
        if (teacher is { } t) SameTokenizer(student.Tokenizer, t.Item1);
        // Every sequence a stage builds must fit its model's positions: said with the config's keys, before any work.
        void Fit(string key, int tokens, Qwen3Config shape, string model, string what)
        {
            if (tokens > shape.MaxPositionEmbeddings)
                throw new ConfigException($"{key}: {what} = {tokens:N0} tokens, more than the {model}'s max_position_embeddings ({shape.MaxPositionEmbeddings:N0}); lower them");
        }
        if (stages.HasFlag(Stages.Rollout) && config.Corpus is null)
            Fit("rollout", config.Rollout.PromptBudget + config.Rollout.MaxNewTokens, student.Shape, "student", "prompt_budget + max_new_tokens");
        if (stages.HasFlag(Stages.Refine) && config.Corpus is null)
            Fit("refine", config.Refine.PromptBudget + config.Refine.MaxNewTokens, teacher?.Item2 ?? student.Shape, teacher is null ? "student" : "teacher", "prompt_budget + max_new_tokens");
        if (stages.HasFlag(Stages.Eval) && config.Eval.Problems.Length > 0)
            Fit("eval.sampling", config.Eval.Sampling.PromptBudget + config.Eval.Sampling.MaxNewTokens, student.Shape, "student", "prompt_budget + max_new_tokens");
        if (stages.HasFlag(Stages.Train))
        {
            Fit("train.max_length", config.Train.MaxLength, student.Shape, "student", "max_length");
            if (teacher is { } tt) Fit("train.max_length", config.Train.MaxLength, tt.Item2, "teacher", "max_length");
        }
    }

    static void Problems(string path, string key)
    {
        if (!File.Exists(path)) throw new ConfigException($"{key}: {path}: no such file");
        ProblemSet.Load(path);
    }

    /// <summary>A model's tokenizer, after checking its files or its random shape and its size against this machine.</summary>
    static (ITokenizer Tokenizer, Qwen3Config Shape) Model(ModelSpec spec, string name)
    {
        ITokenizer tokenizer;
        Qwen3Config shape;
        // A gym model is installed into the cache (a copy of the shipped files, or a training) and checked as a directory.
        if ((spec.Path ?? (spec.Gym is null ? null : ModelStore.Materialise(spec, "", name))) is { } path)
        {
            var file = Path.Combine(path, "config.json");
            if (!File.Exists(file)) throw new ConfigException($"{name}.path: '{path}' holds no config.json (expected a Hugging Face model directory)");
            shape = Qwen3Config.Load(file);
            tokenizer = Qwen3Tokenizer.FromDirectory(path);
            if (tokenizer.VocabularySize > shape.VocabSize)
                throw new ConfigException($"{name}.path: {path}: the tokenizer has {tokenizer.VocabularySize:N0} ids but config.json's vocab_size is {shape.VocabSize:N0}");
        }
        else
        {
            var random = spec.Random ?? throw new ConfigException($"{name}: give 'path' or 'random'");
            tokenizer = spec.Tokenizer == "small" ? SmallTokenizer.Create()
                : File.Exists(Path.Combine(spec.Tokenizer!, "tokenizer.json")) ? Qwen3Tokenizer.FromDirectory(spec.Tokenizer!)
                : throw new ConfigException($"{name}.tokenizer: '{spec.Tokenizer}' holds no tokenizer.json");
            shape = random.Shape(tokenizer.VocabularySize);
        }
        Fits(shape, spec.Dtype ?? TorchSharp.torch.ScalarType.Float32, name);
        return (tokenizer, shape);
    }

    /// <summary>
    /// Refuses a model whose weights alone would not fit in this machine's memory (an estimate from its shape: the
    /// weights in their dtype), naming its shape.
    /// </summary>
    public static void Fits(Qwen3Config shape, TorchSharp.torch.ScalarType dtype, string name)
    {
        var bytes = shape.ParameterCount() * (dtype == TorchSharp.torch.ScalarType.Float32 ? 4.0 : 2.0);
        var available = (double)GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (bytes > available)
            throw new ConfigException($"{name}: a Qwen3 of vocab_size {shape.VocabSize:N0}, hidden_size {shape.HiddenSize:N0}, {shape.NumHiddenLayers} layers and "
                + $"intermediate_size {shape.IntermediateSize:N0} has {shape.ParameterCount() / 1e9:N2} billion weights, {bytes / (1L << 30):N1} GiB in {dtype.ToString().ToLowerInvariant()}: "
                + $"more than this machine's {available / (1L << 30):N1} GiB");
    }

    /// <summary>
    /// Distillation over the vocabulary needs one tokenizer: the teacher's must encode as the student's. And one chat
    /// template: the teacher's contexts are rendered with the student's (<see cref="PromptBuilder"/>), so a teacher
    /// whose model directory declares another (a Qwen3-2507 teacher for a Qwen3 student) would be prompted in a format it
    /// was not trained on.
    /// </summary>
    public static void SameTokenizer(ITokenizer student, ITokenizer teacher)
    {
        if (student.ChatTemplate != teacher.ChatTemplate)
            throw new ConfigException($"the teacher's chat template ({teacher.ChatTemplate}) differs from the student's ({student.ChatTemplate}): "
                + "Trd renders the teacher's contexts with the student's template, so distillation needs one template");
        if (student.VocabularySize != teacher.VocabularySize || student.EndOfTurnId != teacher.EndOfTurnId)
            throw new ConfigException($"the teacher's tokenizer ({teacher.VocabularySize} ids) differs from the student's ({student.VocabularySize} ids): distillation over the vocabulary needs one tokenizer");
        foreach (var probe in new[] { "Wait, 12+7=19.", " \\boxed{42}", "<|im_start|>user\nhi<|im_end|>" })
            if (!student.Encode(probe).SequenceEqual(teacher.Encode(probe)))
                throw new ConfigException($"the teacher's tokenizer encodes '{probe}' differently from the student's: distillation needs one tokenizer");
    }
}
