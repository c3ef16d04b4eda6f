"""Job tasks: each job kind as a thin adapter from a job to a domain call.

One module per domain. A handler is `handler(ctx, config, **services)`: its parameters
after the config name the services it uses (`Runtime` attributes of the same name),
which the job process hands in; the domain code it calls takes the job's context as
`aift.work.control.Work` and so knows nothing of jobs. Importing this package registers
every kind; the API, the CLI and the job process do so once.
"""

from aift.tasks import datasets, evaluation, export, models, rag, system, training

__all__ = ["datasets", "evaluation", "export", "models", "rag", "system", "training"]
