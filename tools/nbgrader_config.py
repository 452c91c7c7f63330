"""nbgrader configuration for a course that uses the book's assignments (nbgrader 0.9.x).

Copy this file into the root of the course directory (next to ``source/``) as
``nbgrader_config.py``; see book/assignments.md. What it changes from nbgrader's defaults:

* every cell of a submission gets at most ``Execute.timeout`` seconds (nbgrader's default
  is 30; a check cell on a busy machine can need more); a cell that runs longer (an endless
  loop) is interrupted (``Execute.interrupt_on_timeout``) and recorded as an error, so that
  part scores 0 with the reason in the feedback, and the remaining cells still run and
  are graded;
* a cell that kills the kernel (``os._exit``, a segfault, running out of memory) would make
  nbgrader give up on the whole submission. :class:`SurvivingExecute` instead records a
  ``DeadKernelError`` on that cell (0 points for it, with the reason), starts a new kernel,
  runs the cells before it again (except cells that killed the kernel) and goes on.

``tests/test_nbgrader_roundtrip.py`` shows both on submissions that hang and that kill
their kernel.
"""

import copy

from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat.v4 import new_output
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    Execute,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)


class SurvivingExecute(Execute):
    """nbgrader's ``Execute``, but a cell that kills the kernel costs only that cell."""

    def preprocess(self, nb, resources=None, km=None):
        self.dead_cells = set()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.log.warning("The kernel died in cell %d; restarting it", index)
            cell.outputs.append(new_output(
                "error", ename="DeadKernelError",
                evalue="the kernel died while running this cell (os._exit, a crash or out of "
                       "memory); the cells after it ran in a new kernel",
                traceback=["DeadKernelError: the kernel died while running this cell"],
            ))
            self.dead_cells.add(index)
            self._cleanup_kernel()  # the dead kernel's manager and client go
            self.km = self.create_kernel_manager()
            self.start_new_kernel()
            self.start_new_kernel_client()
            for i, earlier in enumerate(self.nb.cells[:index]):  # rebuild the state
                if earlier.cell_type == "code" and i not in self.dead_cells:
                    self.execute_cell(copy.deepcopy(earlier), i, store_history=False)
            return cell, self.resources


c = get_config()  # noqa: F821 - nbgrader provides get_config when it loads this file

c.CourseDirectory.course_id = "mmtutor"
# The check cells of the assignments take a few seconds; 60 s leaves room on a slow machine.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
c.Autograde.autograde_preprocessors = [
    SurvivingExecute,  # instead of Execute; the rest is nbgrader 0.9's default list
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
