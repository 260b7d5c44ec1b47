"""Operating a course: its root, intake, the batch, rechecks, exports, the class report, calibration, the demo."""
