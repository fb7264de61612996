using Trd.Core;
using Trd.Runtime.Data;
using Trd.Runtime.Generation;
using Trd.Runtime.Lora;
using Trd.Runtime.Logging;
using Trd.Runtime.Models;
using Trd.Runtime.Tokenization;
using Trd.Runtime.Training;
using TorchSharp;

namespace Trd.Runtime.Pipeline;

/// <summary>
/// The TRD pipeline over one run directory (paper §5): stage 1 samples y_o from the student, stage 2 has the teacher
/// rewrite it into y_r, stage 3 distils with any Trd.Core recipe, then evaluation and corpus analysis. Each stage reads
/// what the previous one wrote, resumes where it stopped (finished problems are skipped), and can run alone (the
/// <c>trd</c> commands) or all together (<see cref="RunAll"/>).
/// </summary>
/// <remarks>
/// Layout of the run directory: <c>manifest.json</c>; <c>models/</c> (random models written on first use);
/// <c>corpus/rollouts.jsonl</c>, <c>corpus/refinements.jsonl</c>, <c>corpus/corpus.parquet</c> (verl layout; or
/// another run's corpus, read in place: <see cref="PipelineConfig.Corpus"/>);
/// <c>train/checkpoints/</c>, <c>train/metrics.jsonl</c>, <c>train/tensorboard/</c>; <c>eval/&lt;model&gt;/</c>;
/// <c>analysis/analysis.json</c>.
/// </remarks>
public sealed partial class TrdPipeline : IDisposable
{
    readonly Action<string> _log;
    readonly IProgressSink? _progress;
    LoadedModel? _student;
    LoadedModel? _teacher;
    IReadOnlyList<Problem>? _problems;

    /// <summary>
    /// A pipeline over <paramref name="directory"/>, opened for <paramref name="config"/> as a <see cref="RunDirectory"/>:
    /// validated, locked for as long as the pipeline lives, refused if it holds a run of another config, and recorded
    /// (config.json, manifest.json) on first use.
    /// </summary>
    public TrdPipeline(PipelineConfig config, string directory, Action<string>? log = null, IProgressSink? progress = null)
        : this(RunDirectory.Open(directory, config ?? throw new ArgumentNullException(nameof(config)), "TrdPipeline", log: log), owns: true, log, progress)
    {
    }

    /// <summary>A pipeline over a run directory the caller opened (and disposes).</summary>
    public TrdPipeline(RunDirectory run, Action<string>? log = null, IProgressSink? progress = null)
        : this(run ?? throw new ArgumentNullException(nameof(run)), owns: false, log, progress)
    {
    }

    TrdPipeline(RunDirectory run, bool owns, Action<string>? log, IProgressSink? progress)
    {
        _run = run;
        _ownsRun = owns;
        Config = run.Config;
        Directory = run.Path;
        try { Device = Config.Device is null ? Devices.Default : Devices.Parse(Config.Device); }
        catch { if (owns) run.Dispose(); throw; }
        _log = log ?? (_ => { });
        _progress = progress;
    }

    readonly RunDirectory _run;
    readonly bool _ownsRun;

    /// <summary>The run's config.</summary>
    public PipelineConfig Config { get; }
    /// <summary>The run directory.</summary>
    public string Directory { get; }
    /// <summary>Where tensors live.</summary>
    public torch.Device Device { get; }
    /// <summary>OPD or OPSD.</summary>
    public Setting Setting => Config.Setting;
    /// <summary>The stage-3 objective.</summary>
    public Recipe Recipe => Config.Recipe;

    /// <summary>corpus/ inside the run directory.</summary>
    public string CorpusDirectory => Config.Corpus ?? Path.Combine(Directory, "corpus");
    /// <summary>Whether the corpus is another run's (<see cref="PipelineConfig.Corpus"/>): read, never written.</summary>
    public bool SharesCorpus => Config.Corpus is not null;
    /// <summary>train/ inside the run directory.</summary>
    public string TrainDirectory => Path.Combine(Directory, "train");
    /// <summary>eval/ inside the run directory.</summary>
    public string EvalDirectory => Path.Combine(Directory, "eval");
    /// <summary>analysis/ inside the run directory.</summary>
    public string AnalysisDirectory => Path.Combine(Directory, "analysis");

    /// <summary>The student's model directory (a random student is written there on first use); loads nothing.</summary>
    public string StudentDirectory => _studentDirectory ??= ModelStore.Materialise(Config.Student, Directory, "student");
    string? _studentDirectory;

    /// <summary>The student model (base weights), loaded on first use.</summary>
    public LoadedModel Student => _student ??= ModelStore.Load(StudentDirectory, Device, Config.Student.Dtype);

    /// <summary>
    /// The student's tokenizer: the loaded student's, or read alone from its directory, so stages that only talk to a
    /// served student never load its weights.
    /// </summary>
    public ITokenizer StudentTokenizer => _student?.Tokenizer ?? (_studentTokenizer ??= Qwen3Tokenizer.FromDirectory(StudentDirectory));
    ITokenizer? _studentTokenizer;

    /// <summary>The OPD teacher, loaded on first use (OPSD: null — the student's backbone teaches).</summary>
    public LoadedModel? Teacher => Setting == Setting.Opsd ? null
        : _teacher ??= LoadTeacher();

    /// <summary>The OPD teacher is frozen: loaded once per process and shared (<see cref="ModelStore.LoadFrozen"/>).</summary>
    LoadedModel LoadTeacher()
    {
        var teacher = ModelStore.LoadFrozen(ModelStore.Materialise(Config.Teacher!, Directory, "teacher"), Device, Config.Teacher!.Dtype);
        Preflight.SameTokenizer(StudentTokenizer, teacher.Tokenizer);
        return teacher;
    }

    /// <summary>The training problems, loaded on first use.</summary>
    public IReadOnlyList<Problem> Problems => _problems ??= ProblemSet.Load(Config.Problems);

    PromptBuilder Builder => new(StudentTokenizer, Config.EnableThinking);

    void Report(string stage, long done, long total, long tokens, DateTime started)
    {
        if (_progress is null) return;
        var elapsed = (DateTime.UtcNow - started).TotalSeconds;
        var rate = elapsed > 0 ? tokens / elapsed : 0;
        TimeSpan? eta = done > 0 && done < total ? TimeSpan.FromSeconds(elapsed / done * (total - done)) : done >= total ? TimeSpan.Zero : null;
        _progress.Report(new ProgressUpdate(stage, done, total, rate, eta));
    }

    /// <summary>
    /// The sampling of a stage's batch: each prompt with its own seed (<see cref="PromptSeed"/>; sample j draws from
    /// seed + j), so a prompt's samples are the same in-process, on a server, alone or in any batch.
    /// </summary>
    SamplingOptions Sampling(SamplingConfig s, IReadOnlyList<long> promptSeeds, int samplesPerPrompt = 1) => new()
    {
        Temperature = s.Temperature, TopP = s.TopP, TopK = s.TopK, MaxNewTokens = s.MaxNewTokens,
        SamplesPerPrompt = samplesPerPrompt, StopTokenIds = StudentTokenizer.StopIds, PromptSeeds = promptSeeds,
        VocabularyLimit = StudentTokenizer.VocabularySize,
    };

    /// <summary>
    /// The seed of row <paramref name="row"/> of batch <paramref name="batch"/> of a stage (issue 14, §1): derived
    /// from (run seed, stage, batch, row) by SplitMix64, so a resumed batch asks for the same samples.
    /// </summary>
    long PromptSeed(long stage, int batch, int row) => Trainer.Derive(Trainer.Derive(Config.Seed, stage, batch), row, 0);

    /// <summary>The generated text of a response: special tokens dropped; with a think block, what follows it.</summary>
    public static string ResponseText(ITokenizer tokenizer, IReadOnlyList<int> tokens)
    {
        var text = tokenizer.Decode(tokens, skipSpecialTokens: true);
        var end = text.LastIndexOf("</think>", StringComparison.Ordinal);
        return (end >= 0 ? text[(end + "</think>".Length)..] : text).Trim();
    }

    /// <summary>Every stage in order: rollout, refine (TRD only), train, eval, analyze.</summary>
    public void RunAll(bool resume)
    {
        Rollout();
        if (Recipe.Trajectory == Trajectory.Refined || Config.Train.Subset.IsFailToSucc) Refine();
        Train(resume);
        Evaluate();
        Analyze();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _student?.Model.Dispose();                // the teacher is shared by the process (LoadFrozen): not ours to dispose
        if (_ownsRun) _run.Dispose();
    }
}
