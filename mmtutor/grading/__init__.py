"""Checks for the course assignments: a student's code against the package's references.

Every check takes the student's function (or module class), runs it on random and
edge-case inputs (shapes, masks, dtypes, a missing modality; on the CPU and on CUDA when
present) and compares the result with the reference implementation of :mod:`mmtutor`. It
returns a :class:`CheckReport` when every case passes and raises :class:`CheckFailed`
naming the input that failed, what was expected (a shape, a dtype, a property) and what
came back, never the reference values. Code that still raises ``NotImplementedError`` is
reported with a :class:`NotImplementedWarning` instead (see :mod:`mmtutor.grading.checks`).

==================================  ==========================================  ===========
check                               reference                                   assignment
==================================  ==========================================  ===========
:func:`check_concat_fusion`         :class:`mmtutor.fusion.ConcatFusion`        01
:func:`check_weighted_sum`          :class:`mmtutor.fusion.WeightedSumFusion`   01
:func:`check_masked_cross_attention`  scaled dot-product attention              02
:func:`check_late_fusion_weights`   :class:`mmtutor.fusion.WeightedVoteFusion`  03
:func:`check_out_of_fold_splits`    the definition of out-of-fold predictions   03
:func:`check_crf_forward`           :meth:`mmtutor.heads.CRF.log_partition`     04
:func:`check_viterbi`               :meth:`mmtutor.heads.CRF.decode`            04
:func:`check_fusion_gain`           a pandas computation on the results table   05
==================================  ==========================================  ===========
"""

from mmtutor.grading.attention import check_masked_cross_attention
from mmtutor.grading.checks import CheckFailed, CheckReport, NotImplementedWarning
from mmtutor.grading.crf import check_crf_forward, check_viterbi
from mmtutor.grading.decision import check_late_fusion_weights, check_out_of_fold_splits
from mmtutor.grading.experiment import check_fusion_gain
from mmtutor.grading.feature import check_concat_fusion, check_weighted_sum

__all__ = [
    "CheckFailed",
    "CheckReport",
    "NotImplementedWarning",
    "check_concat_fusion",
    "check_weighted_sum",
    "check_masked_cross_attention",
    "check_late_fusion_weights",
    "check_out_of_fold_splits",
    "check_crf_forward",
    "check_viterbi",
    "check_fusion_gain",
]
