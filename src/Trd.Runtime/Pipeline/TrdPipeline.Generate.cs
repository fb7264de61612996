using Trd.Core;
using Trd.Runtime.Data;
using Trd.Runtime.Training;

namespace Trd.Runtime.Pipeline;

public sealed partial class TrdPipeline
{
    /// <summary>The stages' seed streams (<see cref="PromptSeed"/>): a resumed batch samples exactly what the interrupted one did.</summary>
    const long RolloutStream = 1, RefineStream = 2, EvalStream = 3;

    /// <summary>
    /// Stage 1: the student samples one y_o per problem (T, top-p, top-k, budget from the config), each verified
    /// against the answer. Problems go in fixed batches; a batch whose records are all written is skipped, one with
    /// any missing is sampled again whole (same seed, same composition, so the same samples) and its missing records
    /// appended. Returns the number of records written now.
    /// </summary>
    public int Rollout()
    {
        if (SharesCorpus) return CheckShared(CorpusStore.RolloutsStage, Problems.Select(p => p.Id));
        var problems = Problems;
        var builder = Builder;
        var prompts = problems.Select(p => builder.Initial(p.Question, Config.Rollout.PromptBudget)).ToArray();
        var over = problems.Where((p, i) => prompts[i] is null).Select(p => p.Id).ToArray();
        if (over.Length > 0)
            throw new ConfigException($"rollout.prompt_budget = {Config.Rollout.PromptBudget}: {over.Length} problem prompt(s) are longer (first: {string.Join(", ", over.Take(5))}); raise the budget — problems are never cut");

        var store = CorpusStore.Open(CorpusDirectory);
        foreach (var repair in store.Repairs) _log(repair);
        var done = store.CompletedIds(CorpusStore.RolloutsStage);
        using var served = Served(Config.Student, StudentDirectory);
        var generator = (ITrajectoryGenerator?)served ?? new TorchGenerator(Student.Model, "student");
        var tokenizer = StudentTokenizer;
        var written = 0;
        long tokens = 0;
        var started = DateTime.UtcNow;
        var batches = problems.Select((p, i) => (p, i)).Chunk(Config.Rollout.BatchSize).ToArray();
        for (var b = 0; b < batches.Length; b++)
        {
            var batch = batches[b];
            if (batch.All(x => done.Contains(x.p.Id))) { Report("rollout", Math.Min((b + 1) * Config.Rollout.BatchSize, problems.Count), problems.Count, tokens, started); continue; }
            var seeds = batch.Select((_, row) => PromptSeed(RolloutStream, b, row)).ToArray();
            var samples = generator.Generate(batch.Select(x => prompts[x.i]!.Ids).ToArray(), Sampling(Config.Rollout, seeds));
            var records = new List<RolloutRecord>();
            foreach (var ((sample, (problem, i)), seed) in samples.Zip(batch).Zip(seeds))
            {
                tokens += sample.Tokens.Length;
                if (done.Contains(problem.Id)) continue;
                var text = ResponseText(tokenizer, sample.Tokens);
                records.Add(new RolloutRecord
                {
                    Id = problem.Id, DataSource = problem.DataSource, Question = problem.Question, Answer = problem.Answer,
                    Solution = problem.Solution, Prompt = prompts[i]!.UserMessage, PromptTokens = prompts[i]!.Ids.Length,
                    YO = text, YOTokens = sample.Tokens, YOTokenCount = sample.Tokens.Length, YOTruncated = sample.Truncated,
                    YOCorrect = Verifier.Verify(text, problem.Answer), Seed = seed,
                });
            }
            store.AppendRollouts(records);
            written += records.Count;
            Report("rollout", Math.Min((b + 1) * Config.Rollout.BatchSize, problems.Count), problems.Count, tokens, started);
        }
        _log($"rollout: {written} new y_o written ({done.Count} already present) by {generator.Name} → {CorpusDirectory}");
        return written;
    }

    /// <summary>
    /// Stage 2: the teacher rewrites each y_o (OPD: the separate teacher sees x and y_o; OPSD: the student's backbone,
    /// adapters off, sees x, y_o and y*). Over-budget prompts shorten y_o, then y*, with a notice; a prompt over budget
    /// even then is recorded with status "prompt-over-budget". Empty and truncated rewrites are recorded with their
    /// status ("empty", "truncated") for the training policy to act on; nothing is dropped here.
    /// </summary>
    public int Refine()
    {
        if (SharesCorpus) return CheckShared(CorpusStore.RefinementsStage, CorpusStore.Open(CorpusDirectory).ReadRollouts().Select(r => r.Id));
        var store = CorpusStore.Open(CorpusDirectory);
        foreach (var repair in store.Repairs) _log(repair);
        var rollouts = store.ReadRollouts();
        if (rollouts.Count == 0) throw new InvalidOperationException($"{CorpusDirectory}: no rollouts to refine; run the rollout stage first");
        if (Setting == Setting.Opsd && rollouts.FirstOrDefault(r => string.IsNullOrEmpty(r.Solution)) is { } missing)
            throw new ConfigException($"OPSD refinement shows the reference solution y*, but problem {missing.Id} has none (a 'solution' column is needed)");
        var done = store.CompletedIds(CorpusStore.RefinementsStage);
        // OPSD refines with the student's backbone (adapters off): the base weights a served student holds.
        using var served = Setting == Setting.Opsd ? Served(Config.Student, StudentDirectory) : Served(Config.Teacher!, Config.Teacher!.Path);
        var teacher = served is null ? Teacher : null;                 // a served teacher is not loaded here
        var generator = (ITrajectoryGenerator?)served
            ?? (teacher is null ? new TorchGenerator(Student.Model, "student (adapters off)", adaptersOff: true) : new TorchGenerator(teacher.Model, "teacher"));
        var tokenizer = StudentTokenizer;
        var builder = Builder;
        var written = 0;
        long tokens = 0;
        var started = DateTime.UtcNow;
        var batches = rollouts.Chunk(Config.Refine.BatchSize).ToArray();
        for (var b = 0; b < batches.Length; b++)
        {
            var batch = batches[b];
            var count = Math.Min((b + 1) * Config.Refine.BatchSize, rollouts.Count);
            if (batch.All(r => done.Contains(r.Id))) { Report("refine", count, rollouts.Count, tokens, started); continue; }
            var seeds = batch.Select((_, row) => PromptSeed(RefineStream, b, row)).ToArray();
            var prompts = batch.Select(r => builder.Refine(r.Question, WithoutStop(r.YOTokens, tokenizer), Setting == Setting.Opsd ? r.Solution : null,
                Config.Refine.PromptBudget)).ToArray();
            var fitting = prompts.Select((p, i) => (p, i)).Where(x => x.p is not null).ToArray();
            var samples = fitting.Length == 0 ? Array.Empty<Generated>()
                : generator.Generate(fitting.Select(x => x.p!.Ids).ToArray(), Sampling(Config.Refine, fitting.Select(x => seeds[x.i]).ToArray()));
            var byIndex = fitting.Select((x, k) => (x.i, samples[k])).ToDictionary(x => x.i, x => x.Item2);
            var records = new List<RefinementRecord>();
            for (var i = 0; i < batch.Length; i++)
            {
                var r = batch[i];
                if (done.Contains(r.Id)) continue;
                if (prompts[i] is not { } prompt)
                {
                    records.Add(new RefinementRecord { Id = r.Id, Prompt = "", PromptTokens = 0, PromptNotice = "the problem and instructions alone exceed refine.prompt_budget",
                        YR = "", YRTokens = Array.Empty<int>(), YRTokenCount = 0, YRTruncated = false, YREmpty = true, YRCorrect = false, Status = RefinementRecord.PromptOverBudget, Seed = seeds[i] });
                    continue;
                }
                var sample = byIndex[i];
                tokens += sample.Tokens.Length;
                var text = ResponseText(tokenizer, sample.Tokens);
                var empty = text.Length == 0;
                // The trajectory the student is trained on: y_r as text under the chat template, ended by <|im_end|> unless cut.
                var ids = empty ? Array.Empty<int>() : sample.Truncated ? tokenizer.Encode(text) : tokenizer.Encode(text).Append(tokenizer.EndOfTurnId).ToArray();
                records.Add(new RefinementRecord
                {
                    Id = r.Id, Prompt = prompt.UserMessage, PromptTokens = prompt.Ids.Length, PromptNotice = prompt.Notice,
                    YR = text, YRTokens = ids, YRTokenCount = ids.Length, YRTruncated = sample.Truncated, YREmpty = empty,
                    YRCorrect = !empty && Verifier.Verify(text, r.Answer), Status = empty ? "empty" : sample.Truncated ? "truncated" : "ok", Seed = seeds[i],
                });
            }
            store.AppendRefinements(records);
            written += records.Count;
            Report("refine", count, rollouts.Count, tokens, started);
        }
        _log($"refine: {written} new y_r written ({done.Count} already present) by {generator.Name} → {CorpusDirectory}");
        return written;
    }

    static int[] WithoutStop(int[] tokens, Tokenization.ITokenizer tokenizer) =>
        tokens.Length > 0 && tokenizer.StopIds.Contains(tokens[^1]) ? tokens[..^1] : tokens;

    /// <summary>A shared corpus is read, never written: a stage on it only checks that every record it would write is there.</summary>
    int CheckShared(string stage, IEnumerable<string> ids)
    {
        var done = CorpusStore.Open(CorpusDirectory).CompletedIds(stage);
        var missing = ids.Where(id => !done.Contains(id)).ToArray();
        if (missing.Length > 0)
            throw new ConfigException($"corpus: {CorpusDirectory} is another run's corpus and lacks {missing.Length} {stage} record(s) (first: {missing[0]}); finish that run's {stage} stage there");
        _log($"{stage}: the shared corpus {CorpusDirectory} is complete ({done.Count} records); nothing to write");
        return 0;
    }

    /// <summary>The server client of a served model (issue 14), or null to generate in-process.</summary>
    Serving.IServedModel? Served(ModelSpec spec, string? directory) => spec.Server is { } server
        ? Serving.ServedModel.Connect(server, server.Model ?? Path.GetFileName(directory!.TrimEnd('/')), StudentTokenizer.VocabularySize, _log,
            outputRows: (int)Checkpoints.Qwen3Config.Load(Path.Combine(directory!, "config.json")).VocabSize)
        : null;
}
