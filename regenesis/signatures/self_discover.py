"""Self-Discover's implement step: a task-level plan written as a JSON-like list of steps."""

import dspy


class ImplementReasoningPlan(dspy.Signature):
    """Write a reasoning plan for this kind of task from the adapted guidelines: a JSON object whose keys
    are the steps to take, in order, and whose values are empty strings to be filled in when a problem
    is solved. The plan must fit every problem of the task, not one problem."""

    task_examples: str = dspy.InputField(desc="a few problems of the task")
    adapted_guidelines: str = dspy.InputField()
    reasoning_plan: str = dspy.OutputField(desc='a JSON object such as {"Step 1: ...": "", "Step 2: ...": ""}')
