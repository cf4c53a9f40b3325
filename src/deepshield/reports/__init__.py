"""Reports: self-contained HTML reports with face thumbnails, landmarks, poses and score timelines."""
