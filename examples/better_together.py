"""dspy.BetterTogether with ReGenesis as its weight optimizer, on bundled wordmath problems.

BetterTogether alternates prompt optimization and fine-tuning. Here its ``p`` is DSPy's BootstrapFewShot
(demos) and its ``w`` is ``ReGenesisOptimizer``: reasoning paths synthesized abstract-to-concrete, kept by
the metric, then the model fine-tuned on them with the project's TRL stage. The paths are formatted with
the demos ``p`` gave the program, so the tuned model is trained on the prompts it is then sent. Every
step is scored on the validation problems and the best program is returned::

    python examples/better_together.py                      # the embedded model, a few minutes on a CPU
    python examples/better_together.py --model runs/ckpt --train 20 --val 10 --max-steps 50
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import dspy

from regenesis.models import configure
from regenesis.optimize.methods import ReGenesisBudget
from regenesis.optimize.optimizer import ReGenesisOptimizer
from regenesis.tasks import load_task


class WordProblem(dspy.Signature):
    """Solve the word problem."""

    question: str = dspy.InputField()
    answer: int = dspy.OutputField()


def exact(example, prediction, trace=None) -> bool:
    return prediction.answer == example.answer


def wordmath(split: str, limit: int) -> list[dspy.Example]:
    return [dspy.Example(question=problem.question, answer=int(problem.gold)).with_inputs("question")
            for problem in load_task("wordmath-l1", split=split, limit=limit)]


def better_together(model: str | None, train: int, val: int, max_steps: int, strategy: str, out: str,
                    max_tokens: int = 128) -> dspy.Module:
    """The best program of ``strategy`` over ``train`` problems, scored on ``val`` test problems."""
    lm = configure(model, max_tokens=max_tokens)
    student = dspy.ChainOfThought(WordProblem)
    student.set_lm(lm)  # BetterTogether, like BootstrapFinetune, needs each predictor's LM set
    optimizer = dspy.BetterTogether(
        metric=exact,
        p=dspy.BootstrapFewShot(metric=exact, max_bootstrapped_demos=1, max_labeled_demos=1),
        w=ReGenesisOptimizer(metric=exact, regenesis=ReGenesisBudget(selections=0, singles=1), run_dir=out,
                             num_threads=1, train_kwargs={"max_steps": max_steps, "batch_size": 1}),
    )
    return optimizer.compile(student, trainset=wordmath("train", train), valset=wordmath("test", val),
                             strategy=strategy, num_threads=1, seed=0)


def main(argv: Sequence[str] | None = None) -> dspy.Module:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a model spec (default: the embedded model)")
    parser.add_argument("--train", type=int, default=3, help="wordmath-l1 train problems (default 3)")
    parser.add_argument("--val", type=int, default=2, help="wordmath-l1 test problems that score each step")
    parser.add_argument("--max-steps", type=int, default=2, help="fine-tuning steps (default 2)")
    parser.add_argument("--strategy", default="p -> w", help='BetterTogether\'s strategy (default "p -> w")')
    parser.add_argument("--out", default="runs/better-together", help="ReGenesis's run folder (resumable)")
    args = parser.parse_args(argv)
    best = better_together(args.model, args.train, args.val, args.max_steps, args.strategy, args.out)
    for candidate in best.candidate_programs:
        print(f"{candidate['strategy'] or 'baseline':<10} score {candidate['score']}")
    print(f"best program's model: {best.predict.lm.model}")
    return best


if __name__ == "__main__":
    main()
