"""3D object detectors that run on velodyne-format point clouds (real or pseudo-LiDAR).

``frustum_pointnet`` holds Frustum-PointNet v1 (Qi et al., CVPR 2018) as the pseudo-LiDAR paper
and ForeSeE used it. This package imports only :mod:`kitti` from foresee.
"""

CODE_VERSION = "2"  # 2: F-PointNet inference seeds its random gather per frame (shardable)
